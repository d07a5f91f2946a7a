// The REST half of the local Discord: the routes the bot uses, with the rules real Discord
// enforces (3 s to acknowledge, one acknowledgement, 15-minute tokens), 404 JSON for the rest,
// and 429s on request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ParsedBody, readBody } from './body.ts';
import { snowflake, userJson } from './payloads.ts';
import type { InteractionState, StandInState, StoredCommand, StoredMessage } from './state.ts';

export const ACK_WINDOW_MS = 3_000;
export const TOKEN_LIFETIME_MS = 15 * 60_000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const unknownInteraction = () => new HttpError(404, 10062, 'Unknown interaction');
const unknownMessage = () => new HttpError(404, 10008, 'Unknown Message');
const unknownWebhook = () => new HttpError(404, 10015, 'Unknown Webhook');

interface Context {
  req: IncomingMessage;
  params: Record<string, string>;
  body: ParsedBody;
  query: URLSearchParams;
  /** Filled in by handlers for the request log. */
  token?: string;
  messageId?: string;
}

type Handler = (ctx: Context) => unknown;

interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  keys: string[];
  bot: boolean;
  handler: Handler;
}

export interface RestOptions {
  state: StandInState;
  token: string;
  gatewayUrl: () => string;
  /** What GET /gateway/bot recommends. */
  shards: number;
  guildIds: () => string[];
  /** The guild a channel belongs to, or undefined for an unknown channel. */
  channelGuild: (channelId: string) => string | undefined;
}

export class Rest {
  private readonly routes: Route[] = [];
  /** route template → 429s still to give, and the retry-after to send. */
  private readonly rateLimits = new Map<string, { times: number; retryAfter: number }>();
  /** route template → the error every request to it with that token gets (Discord failing). */
  private readonly failures = new Map<
    string,
    { token: string; status: number; code: number; message: string }
  >();
  /** route template → requests for that token still to carry out and then answer 500. */
  private readonly lostAnswers = new Map<string, { token: string; times: number }>();
  /** route template → requests for that token left unanswered, and undone, until released. */
  private readonly holds = new Map<string, { token: string; released: Promise<void>; release: () => void }>();

  constructor(private readonly o: RestOptions) {
    this.define();
  }

  /** The next `times` requests to `route` (`"POST /channels/:channel/messages"`) get a 429. */
  rateLimit(route: string, times = 1, retryAfter = 0.05): void {
    if (!this.routes.some((r) => `${r.method} ${r.template}` === route)) {
      throw new Error(`stand-in: no route ${route}`);
    }
    this.rateLimits.set(route, { times, retryAfter });
  }

  /**
   * Every request to `route` for the interaction `token` fails with this status and error code
   * (a 500 that discord.js retries and gives up on, say) until `undefined` is given.
   */
  failWith(
    route: string,
    failure: { token: string; status: number; code: number; message: string } | undefined,
  ): void {
    if (!this.routes.some((r) => `${r.method} ${r.template}` === route)) {
      throw new Error(`stand-in: no route ${route}`);
    }
    if (failure) this.failures.set(route, failure);
    else this.failures.delete(route);
  }

  /**
   * The next `times` requests to `route` for the interaction `token` are carried out, then
   * answered 500, as when Discord's answer is lost after it acted: discord.js retries a request
   * that already took effect (a second acknowledgement gets 40060). `undefined` ends it.
   */
  loseAnswers(route: string, lost: { token: string; times: number } | undefined): void {
    if (!this.routes.some((r) => `${r.method} ${r.template}` === route)) {
      throw new Error(`stand-in: no route ${route}`);
    }
    if (lost) this.lostAnswers.set(route, { ...lost });
    else this.lostAnswers.delete(route);
  }

  /**
   * Every request to `route` for the interaction `token` gets no answer, and is not carried out,
   * until `undefined` is given (Discord stalled): then each is answered 500, still undone. A bot
   * killed meanwhile has sent its request, and Discord never acted on it.
   */
  hold(route: string, token: string | undefined): void {
    if (!this.routes.some((r) => `${r.method} ${r.template}` === route)) {
      throw new Error(`stand-in: no route ${route}`);
    }
    this.holds.get(route)?.release();
    this.holds.delete(route);
    if (token === undefined) return;
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.holds.set(route, { token, released, release });
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const at = this.o.state.clock.now();
    if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) return this.attachment(url, res);
    const path = decodeURIComponent(url.pathname.replace(/^\/api\/v10/, ''));
    const body = await readBody(req);
    const match = this.match(req.method ?? 'GET', path);
    const ctx: Context = { req, params: match?.params ?? {}, body, query: url.searchParams };
    let status = 200;
    let payload: unknown;
    const limit = match && this.rateLimits.get(`${match.route.method} ${match.route.template}`);
    try {
      if (!match) throw new HttpError(404, 0, `404: Not Found (${req.method} ${path})`);
      if (limit && limit.times > 0) {
        limit.times--;
        res.setHeader('retry-after', String(limit.retryAfter));
        res.setHeader('x-ratelimit-scope', 'user');
        throw new HttpError(429, 0, 'You are being rate limited.');
      }
      if (match.route.bot && req.headers.authorization !== `Bot ${this.o.token}`) {
        throw new HttpError(401, 0, '401: Unauthorized');
      }
      const failure = this.failures.get(`${match.route.method} ${match.route.template}`);
      if (failure && match.params.token === failure.token) {
        ctx.token = failure.token;
        throw new HttpError(failure.status, failure.code, failure.message);
      }
      const held = this.holds.get(`${match.route.method} ${match.route.template}`);
      if (held && match.params.token === held.token) {
        ctx.token = held.token;
        await held.released;
        throw new HttpError(500, 0, '500: Internal Server Error');
      }
      payload = await match.route.handler(ctx);
      if (payload === undefined) status = 204;
      const lost = this.lostAnswers.get(`${match.route.method} ${match.route.template}`);
      if (lost && lost.times > 0 && match.params.token === lost.token) {
        lost.times--;
        throw new HttpError(500, 0, '500: Internal Server Error');
      }
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      status = err.status;
      payload =
        status === 429
          ? { message: err.message, retry_after: limit?.retryAfter ?? 0, global: false }
          : { message: err.message, code: err.code };
    }
    this.o.state.record({
      method: req.method ?? 'GET',
      route: match ? `${match.route.method} ${match.route.template}` : `${req.method} ${path}`,
      path,
      query: url.searchParams,
      body: body.json,
      files: body.files.map((f) => ({ index: f.index, filename: f.filename, size: f.bytes.length })),
      status,
      at,
      token: ctx.token,
      messageId: ctx.messageId,
    });
    if (status === 204) {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
  }

  private attachment(url: URL, res: ServerResponse): void {
    const id = url.pathname.split('/')[3] ?? '';
    const found = this.o.state.attachments.get(id);
    if (!found) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': found.contentType }).end(found.bytes);
  }

  private match(method: string, path: string) {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => {
        params[k] = m[i + 1] as string;
      });
      return { route, params };
    }
    return undefined;
  }

  private on(method: string, template: string, handler: Handler, bot = true): void {
    const keys: string[] = [];
    const source = template
      .split('/')
      .map((part) => {
        if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        keys.push(part.slice(1));
        return '([^/]+)';
      })
      .join('/');
    this.routes.push({ method, template, pattern: new RegExp(`^${source}$`), keys, bot, handler });
  }

  private define(): void {
    const { state } = this.o;
    this.on('GET', '/gateway/bot', () => ({
      url: this.o.gatewayUrl(),
      shards: this.o.shards,
      session_start_limit: { total: 1000, remaining: 999, reset_after: 86_400_000, max_concurrency: 1 },
    }));
    this.on('GET', '/users/@me', () => userJson(state.botUserId, 'hiresbot', true));
    this.on('GET', '/applications/@me', () => ({
      id: state.applicationId,
      name: 'hiresbot',
      icon: null,
      description: '',
      bot_public: true,
      bot_require_code_grant: false,
      flags: 0,
      bot: userJson(state.botUserId, 'hiresbot', true),
      approximate_guild_count: this.o.guildIds().length,
    }));

    this.on('GET', '/applications/:app/commands', (c) => this.commandList(c).list);
    this.on('PUT', '/applications/:app/commands', (c) => this.putCommands(c));
    this.on('GET', '/applications/:app/guilds/:guild/commands', (c) => this.commandList(c).list);
    this.on('PUT', '/applications/:app/guilds/:guild/commands', (c) => this.putCommands(c));

    this.on('POST', '/channels/:channel/messages', (c) => {
      const guildId = this.o.channelGuild(c.params.channel as string);
      if (!guildId) throw new HttpError(404, 10003, 'Unknown Channel');
      const message = state.createMessage({
        channelId: c.params.channel as string,
        guildId,
        webhookId: undefined,
        body: this.messageBody(c),
        files: c.body.files,
      });
      c.messageId = message.id;
      return state.messageJson(message);
    });
    const channelMessage = (c: Context) => {
      const m = state.messages.get(c.params.message as string);
      if (!m || m.deleted || m.channelId !== c.params.channel) throw unknownMessage();
      c.messageId = m.id;
      return m;
    };
    this.on('GET', '/channels/:channel/messages/:message', (c) => state.messageJson(channelMessage(c)));
    this.on('PATCH', '/channels/:channel/messages/:message', (c) => {
      const m = channelMessage(c);
      state.editMessage(m, this.messageBody(c), c.body.files);
      return state.messageJson(m);
    });
    this.on('DELETE', '/channels/:channel/messages/:message', (c) => {
      channelMessage(c).deleted = true;
    });

    this.on('POST', '/interactions/:id/:token/callback', (c) => this.callback(c), false);

    this.on(
      'POST',
      '/webhooks/:app/:token',
      (c) => {
        const i = this.webhookInteraction(c);
        const message = state.createMessage({
          channelId: i.channelId,
          guildId: i.guildId,
          webhookId: state.applicationId,
          body: this.messageBody(c),
          files: c.body.files,
        });
        c.messageId = message.id;
        return state.messageJson(message);
      },
      false,
    );
    this.on(
      'GET',
      '/webhooks/:app/:token/messages/:message',
      (c) => state.messageJson(this.webhookMessage(c)),
      false,
    );
    this.on(
      'PATCH',
      '/webhooks/:app/:token/messages/:message',
      (c) => {
        const m = this.webhookMessage(c);
        state.editMessage(m, this.messageBody(c), c.body.files);
        return state.messageJson(m);
      },
      false,
    );
    this.on(
      'DELETE',
      '/webhooks/:app/:token/messages/:message',
      (c) => {
        this.webhookMessage(c).deleted = true;
      },
      false,
    );
  }

  private messageBody(c: Context): Record<string, unknown> {
    const body = c.body.json;
    if (body === null || typeof body !== 'object')
      throw new HttpError(400, 50006, 'Cannot send an empty message');
    return body as Record<string, unknown>;
  }

  private commandList(c: Context): { list: StoredCommand[]; replace(next: StoredCommand[]): void } {
    const { state } = this.o;
    if (c.params.app !== state.applicationId) throw new HttpError(403, 50001, 'Missing Access');
    const guildId = c.params.guild;
    if (guildId === undefined) {
      return {
        list: state.globalCommands,
        replace: (next) => state.globalCommands.splice(0, state.globalCommands.length, ...next),
      };
    }
    if (!this.o.guildIds().includes(guildId)) throw new HttpError(403, 50001, 'Missing Access');
    return {
      list: state.guildCommands.get(guildId) ?? [],
      replace: (next) => state.guildCommands.set(guildId, next),
    };
  }

  /** Stores the definitions with the fields Discord adds (ids, version, defaults). */
  private putCommands(c: Context): StoredCommand[] {
    const target = this.commandList(c);
    const body = c.body.json;
    if (!Array.isArray(body)) throw new HttpError(400, 50035, 'Invalid Form Body');
    const stored = body.map((raw: Record<string, unknown>) => {
      const previous = target.list.find((p) => p.name === raw.name);
      const { name_localizations: _n, description_localizations: _d, ...rest } = raw;
      return {
        ...rest,
        id: previous?.id ?? snowflake(),
        application_id: this.o.state.applicationId,
        ...(c.params.guild ? { guild_id: c.params.guild } : {}),
        version: snowflake(),
        type: raw.type ?? 1,
        name: String(raw.name),
        default_member_permissions: raw.default_member_permissions ?? null,
        nsfw: raw.nsfw ?? false,
        ...(c.params.guild ? {} : { dm_permission: raw.dm_permission ?? true }),
        integration_types: raw.integration_types ?? [0],
        contexts: raw.contexts ?? null,
      } satisfies StoredCommand;
    });
    target.replace(stored);
    return stored;
  }

  private callback(c: Context): unknown {
    const { state } = this.o;
    const i = state.interactions.get(c.params.id as string);
    c.token = c.params.token;
    if (!i || i.token !== c.params.token) throw unknownInteraction();
    if (i.ack) throw new HttpError(400, 40060, 'Interaction has already been acknowledged.');
    if (state.clock.now() - i.createdAt > ACK_WINDOW_MS) throw unknownInteraction();
    const body = c.body.json as { type: number; data?: Record<string, unknown> };
    const data = body.data ?? {};
    const fromComponent = i.componentMessageId !== undefined;
    let message: StoredMessage | undefined;
    switch (body.type) {
      case 4:
      case 5:
        message = state.createMessage({
          channelId: i.channelId,
          guildId: i.guildId,
          webhookId: state.applicationId,
          body: data,
          files: c.body.files,
          loading: body.type === 5,
        });
        i.originalId = message.id;
        break;
      case 6:
      case 7: {
        if (!fromComponent) throw new HttpError(400, 50035, 'Invalid Form Body (no message to update)');
        message = state.messages.get(i.componentMessageId as string);
        if (!message) throw unknownMessage();
        if (body.type === 7) state.editMessage(message, data, c.body.files);
        i.originalId = message.id;
        break;
      }
      case 9:
        if (i.type === 5) throw new HttpError(400, 50035, 'Invalid Form Body (a modal cannot open a modal)');
        i.modal = data;
        break;
      default:
        throw new HttpError(400, 50035, `Invalid Form Body (callback type ${body.type})`);
    }
    i.ack = { type: body.type, at: state.clock.now() };
    c.messageId = message?.id;
    if (c.query.get('with_response') !== 'true') return undefined;
    return {
      interaction: {
        id: i.id,
        type: i.type,
        activity_instance_id: null,
        response_message_id: message?.id ?? null,
        response_message_loading: body.type === 5,
        response_message_ephemeral: message ? (message.flags & 64) !== 0 : false,
      },
      resource: { type: body.type, ...(message ? { message: state.messageJson(message) } : {}) },
    };
  }

  /** The interaction a webhook token belongs to, if it is acknowledged and not expired. */
  private webhookInteraction(c: Context): InteractionState {
    const { state } = this.o;
    c.token = c.params.token;
    if (c.params.app !== state.applicationId) throw unknownWebhook();
    const i = state.interactionByToken(c.params.token as string);
    if (!i) throw unknownWebhook();
    if (state.clock.now() - i.createdAt > TOKEN_LIFETIME_MS) {
      throw new HttpError(401, 50027, 'Invalid Webhook Token');
    }
    if (!i.ack) throw unknownWebhook();
    return i;
  }

  private webhookMessage(c: Context): StoredMessage {
    const i = this.webhookInteraction(c);
    const id = c.params.message === '@original' ? i.originalId : c.params.message;
    const m = id ? this.o.state.messages.get(id) : undefined;
    if (!m || m.deleted || m.channelId !== i.channelId) throw unknownMessage();
    c.messageId = m.id;
    return m;
  }
}
