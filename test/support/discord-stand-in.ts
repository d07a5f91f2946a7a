/**
 * A local Discord for tests: REST on node:http and the gateway on `ws`, on 127.0.0.1, speaking the
 * real protocol to the real discord.js client (shared/docs/discord-wire.md). Tests inject
 * interactions as a user would cause them and read back what the bot sent: every request, every
 * message with its edits, and the bytes of every attachment.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Delivery, Gateway } from './discord-stand-in/gateway.ts';
import {
  channelJson,
  DEFAULT_EVERYONE,
  type GuildSpec,
  guildCreateJson,
  memberJson,
  memberPermissions,
  roleJson,
  snowflake,
  userJson,
} from './discord-stand-in/payloads.ts';
import { Rest } from './discord-stand-in/rest.ts';
import {
  type InteractionState,
  type LoggedRequest,
  StandInState,
  type StoredAttachment,
  type StoredCommand,
  type StoredMessage,
} from './discord-stand-in/state.ts';

export type { Delivery, ShardPair } from './discord-stand-in/gateway.ts';
export { shardOf } from './discord-stand-in/gateway.ts';
export type { GuildSpec, MemberSpec, RoleSpec } from './discord-stand-in/payloads.ts';
export { ACK_WINDOW_MS, TOKEN_LIFETIME_MS } from './discord-stand-in/rest.ts';
export type {
  InteractionState,
  LoggedRequest,
  StoredAttachment,
  StoredMessage,
} from './discord-stand-in/state.ts';

export interface StandInOptions {
  guilds?: GuildSpec[];
  token?: string;
  applicationId?: string;
  botUserId?: string;
  heartbeatMs?: number;
  /** The shard count GET /gateway/bot recommends (default 1). */
  shards?: number;
}

export interface InjectOptions {
  /** The member's permissions as Discord would send them (default: computed from their roles). */
  permissions?: bigint;
  /** The member's roles (default: the guild spec's). */
  roles?: string[];
  channelId?: string;
  /** How long ago Discord created it (its id's timestamp): time its answer has already spent. */
  sentMsAgo?: number;
}

export type OptionValue = string | number | boolean;

/** What a test holds of an interaction it injected. */
export interface Injected {
  id: string;
  token: string;
  guildId: string;
  channelId: string;
  userId: string;
}

const OPTION_TYPE = {
  subcommand: 1,
  group: 2,
  string: 3,
  integer: 4,
  boolean: 5,
  user: 6,
  role: 8,
  number: 10,
};

interface OptionDefinition {
  name: string;
  type: number;
  options?: OptionDefinition[];
}

export class DiscordStandIn {
  readonly token: string;
  readonly applicationId: string;
  readonly botUserId: string;
  readonly state: StandInState;
  readonly rest: Rest;
  private readonly gateway: Gateway;
  private readonly guilds: Map<string, GuildSpec>;
  private readonly server: Server;

  private constructor(o: StandInOptions) {
    this.token = o.token ?? 'stand-in-token';
    this.applicationId = o.applicationId ?? snowflake();
    this.botUserId = o.botUserId ?? this.applicationId;
    this.guilds = new Map((o.guilds ?? []).map((g) => [g.id, g]));
    this.state = new StandInState(this.applicationId, this.botUserId, () => this.baseUrl);
    const joinedAt = new Date().toISOString();
    this.gateway = new Gateway({
      token: this.token,
      heartbeatMs: o.heartbeatMs ?? 150,
      ready: (sessionId, shard, onShard) => ({
        ready: {
          v: 10,
          user: {
            ...userJson(this.botUserId, 'hiresbot', true),
            verified: true,
            mfa_enabled: false,
            flags: 0,
          },
          guilds: [...this.guilds.keys()].filter(onShard).map((id) => ({ id, unavailable: true })),
          session_id: sessionId,
          resume_gateway_url: this.gatewayUrl,
          shard,
          application: { id: this.applicationId, flags: 0 },
          private_channels: [],
          relationships: [],
          presences: [],
          guild_join_requests: [],
          geo_ordered_rtc_regions: [],
          user_settings: {},
        },
        guilds: [...this.guilds.values()]
          .filter((g) => onShard(g.id))
          .map((g) => guildCreateJson(g, this.botUserId, joinedAt)),
      }),
    });
    this.rest = new Rest({
      state: this.state,
      token: this.token,
      gatewayUrl: () => this.gatewayUrl,
      shards: o.shards ?? 1,
      guildIds: () => [...this.guilds.keys()],
      channelGuild: (channelId) =>
        [...this.guilds.values()].find((g) => g.channels?.some((c) => c.id === channelId))?.id,
    });
    this.server = createServer((req, res) => {
      this.rest.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: String(err), code: 0 }));
      });
    });
    this.server.on('upgrade', (req, socket, head) => this.gateway.upgrade(req, socket, head));
  }

  static async start(options: StandInOptions = {}): Promise<DiscordStandIn> {
    const standIn = new DiscordStandIn(options);
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    return standIn;
  }

  get baseUrl(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** What `DISCORD_API_URL` / the client's `rest.api` should be. */
  get apiUrl(): string {
    return `${this.baseUrl}/api`;
  }

  get gatewayUrl(): string {
    return `${this.baseUrl.replace('http', 'ws')}/gateway`;
  }

  /** Clients that identified and are still connected. */
  get connectedClients(): number {
    return this.gateway.identified.length;
  }

  /** The connected sessions and the shard each identified as. */
  get sessions(): Delivery[] {
    return this.gateway.identified;
  }

  get identifies(): number {
    return this.gateway.identifies;
  }

  /** Moves the stand-in's clock (ack window, token expiry, edit timestamps) forward. */
  advance(ms: number): void {
    this.state.clock.advance(ms);
  }

  now(): number {
    return this.state.clock.now();
  }

  /** Call after the client's `destroy()`: sockets terminated, then both servers closed. */
  async stop(): Promise<void> {
    await this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- what the bot sent -----------------------------------------------------------------------

  requests(filter: { route?: string; token?: string } = {}): LoggedRequest[] {
    return this.state.log.filter(
      (r) =>
        (filter.route === undefined || r.route === filter.route) &&
        (filter.token === undefined || r.token === filter.token),
    );
  }

  /** Resolves with the first logged request (past or future) that matches. */
  waitForRequest(match: (r: LoggedRequest) => boolean, timeoutMs = 10_000): Promise<LoggedRequest> {
    return this.state.waitFor(() => this.state.log.find(match), timeoutMs, 'a matching request');
  }

  /** Resolves once `check` returns a value, re-checked after every request. */
  waitUntil<T>(check: () => T | undefined, timeoutMs = 10_000, what = 'a condition'): Promise<T> {
    return this.state.waitFor(check, timeoutMs, what);
  }

  interaction(injected: Injected): InteractionState {
    const state = this.state.interactions.get(injected.id);
    if (!state) throw new Error(`stand-in: no interaction ${injected.id}`);
    return state;
  }

  /**
   * The session that acknowledged the interaction. A callback carries no credentials, only the
   * interaction's token, which no session but the one it was dispatched to has seen.
   */
  answeredBy(injected: Injected): Delivery | undefined {
    const i = this.interaction(injected);
    return i.ack && i.deliveredTo.length === 1 ? i.deliveredTo[0] : undefined;
  }

  waitForAck(injected: Injected, timeoutMs?: number): Promise<InteractionState> {
    return this.waitUntil(
      () => {
        const i = this.interaction(injected);
        return i.ack ? i : undefined;
      },
      timeoutMs,
      `an acknowledgement of interaction ${injected.id}`,
    );
  }

  /** The interaction's reply (or, for a component, the message it updated). */
  original(injected: Injected): StoredMessage | undefined {
    const id = this.interaction(injected).originalId;
    return id ? this.state.messages.get(id) : undefined;
  }

  message(id: string): StoredMessage | undefined {
    return this.state.messages.get(id);
  }

  /** Messages in a channel, oldest first. */
  channelMessages(channelId: string): StoredMessage[] {
    return [...this.state.messages.values()].filter((m) => m.channelId === channelId);
  }

  attachmentBytes(attachment: Pick<StoredAttachment, 'id'>): Buffer {
    const found = this.state.attachments.get(attachment.id);
    if (!found) throw new Error(`stand-in: no attachment ${attachment.id}`);
    return found.bytes;
  }

  commands(guildId?: string): StoredCommand[] {
    return guildId ? (this.state.guildCommands.get(guildId) ?? []) : this.state.globalCommands;
  }

  /** The API shape of a stored message, as a component interaction carries it. */
  messageJson(message: StoredMessage) {
    return this.state.messageJson(message);
  }

  // --- interactions a user causes --------------------------------------------------------------

  /**
   * A chat-input command. `name` may include a subcommand (`"quota-admin set-user"`); option types
   * come from the registered definition when there is one, else from the values.
   */
  slash(
    guildId: string,
    userId: string,
    name: string,
    options: Record<string, OptionValue> = {},
    inject: InjectOptions = {},
  ): Injected {
    const [commandName, ...path] = name.split(' ') as [string, ...string[]];
    const definition = this.findCommand(guildId, commandName);
    const resolved: Record<string, Record<string, unknown>> = {};
    const guild = this.guild(guildId);
    let defs = (definition?.options as OptionDefinition[] | undefined) ?? [];
    const leaf: { name: string; type: number; value: OptionValue }[] = [];
    for (const [key, value] of Object.entries(options)) {
      const def = this.leafDefinitions(defs, path).find((d) => d.name === key);
      const type = def?.type ?? inferType(value);
      if (type === OPTION_TYPE.user) {
        const member = guild.members?.find((m) => m.id === value);
        resolved.users = { ...resolved.users, [String(value)]: userJson(String(value), member?.username) };
        if (member) {
          const { user: _user, ...rest } = memberJson(member, new Date().toISOString());
          resolved.members = {
            ...resolved.members,
            [member.id]: { ...rest, permissions: String(memberPermissions(guild, member)) },
          };
        }
      }
      if (type === OPTION_TYPE.role) {
        // the server's own id is its @everyone role, which Discord resolves like any other
        const role =
          value === guildId
            ? { id: guildId, name: '@everyone', permissions: guild.everyone ?? DEFAULT_EVERYONE }
            : guild.roles?.find((r) => r.id === value);
        if (role)
          resolved.roles = {
            ...resolved.roles,
            [role.id]: roleJson(guildId, role, value === guildId ? 0 : 1),
          };
      }
      leaf.push({ name: key, type, value });
    }
    let wrapped: unknown[] = leaf;
    for (let depth = path.length - 1; depth >= 0; depth--) {
      defs = this.leafDefinitions(
        (definition?.options as OptionDefinition[] | undefined) ?? [],
        path.slice(0, depth),
      );
      const sub = defs.find((d) => d.name === path[depth]);
      const type = sub?.type ?? (depth === path.length - 1 ? OPTION_TYPE.subcommand : OPTION_TYPE.group);
      wrapped = [{ name: path[depth], type, options: wrapped }];
    }
    return this.send(guildId, userId, inject, {
      type: 2,
      data: {
        id: definition?.id ?? snowflake(),
        name: commandName,
        type: 1,
        options: wrapped,
        ...(Object.keys(resolved).length ? { resolved } : {}),
        ...(definition?.guild_id ? { guild_id: definition.guild_id } : {}),
      },
    });
  }

  /** A button press on a message the bot sent. */
  click(message: StoredMessage, customId: string, userId: string, inject: InjectOptions = {}): Injected {
    return this.component(message, userId, inject, { custom_id: customId, component_type: 2 });
  }

  /** A choice in a string select menu on a message the bot sent. */
  select(
    message: StoredMessage,
    customId: string,
    values: string[],
    userId: string,
    inject: InjectOptions = {},
  ): Injected {
    return this.component(message, userId, inject, { custom_id: customId, component_type: 3, values });
  }

  /** A modal's submission: text inputs by custom id (optionally from a component's message). */
  submitModal(
    guildId: string,
    userId: string,
    customId: string,
    fields: Record<string, string>,
    inject: InjectOptions & { message?: StoredMessage } = {},
  ): Injected {
    const components = Object.entries(fields).map(([id, value]) => ({
      type: 1,
      components: [{ type: 4, custom_id: id, value }],
    }));
    return this.send(
      guildId,
      userId,
      { ...inject, channelId: inject.message?.channelId ?? inject.channelId },
      {
        type: 5,
        data: { custom_id: customId, components },
        ...(inject.message ? { message: this.state.messageJson(inject.message) } : {}),
      },
      inject.message?.id,
    );
  }

  private component(
    message: StoredMessage,
    userId: string,
    inject: InjectOptions,
    data: Record<string, unknown>,
  ): Injected {
    const guildId = message.guildId;
    if (!guildId) throw new Error('stand-in: components are only simulated in guild channels');
    return this.send(
      guildId,
      userId,
      { ...inject, channelId: message.channelId },
      { type: 3, data, message: this.state.messageJson(message) },
      message.id,
    );
  }

  private send(
    guildId: string,
    userId: string,
    inject: InjectOptions,
    body: { type: number; data: unknown; message?: unknown },
    componentMessageId?: string,
  ): Injected {
    const guild = this.guild(guildId);
    const channel = inject.channelId
      ? guild.channels?.find((c) => c.id === inject.channelId)
      : guild.channels?.[0];
    if (!channel) throw new Error(`stand-in: guild ${guildId} has no channel ${inject.channelId ?? ''}`);
    const spec = guild.members?.find((m) => m.id === userId) ?? { id: userId };
    const member = { ...spec, roles: inject.roles ?? spec.roles ?? [] };
    const permissions = inject.permissions ?? memberPermissions(guild, member);
    const id = snowflake(Date.now() - (inject.sentMsAgo ?? 0));
    const token = `itoken-${id}-${Math.random().toString(36).slice(2)}`;
    const interaction: InteractionState = {
      id,
      token,
      type: body.type,
      guildId,
      channelId: channel.id,
      userId,
      createdAt: this.state.clock.now(),
      ack: undefined,
      originalId: undefined,
      componentMessageId,
      modal: undefined,
      deliveredTo: [],
    };
    this.state.interactions.set(id, interaction);
    const payload = {
      id,
      application_id: this.applicationId,
      type: body.type,
      token,
      version: 1,
      data: body.data,
      ...(body.message ? { message: body.message } : {}),
      guild_id: guildId,
      guild: { id: guildId, locale: 'en-US', features: [] },
      channel_id: channel.id,
      channel: { ...channelJson(guildId, channel, 0), permissions: String(permissions) },
      member: { ...memberJson(member, new Date().toISOString()), permissions: String(permissions) },
      app_permissions: String(memberPermissions(guild, { id: this.botUserId })),
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': guildId },
      context: 0,
      attachment_size_limit: 10 * 1024 * 1024,
    };
    interaction.deliveredTo = this.gateway.dispatch('INTERACTION_CREATE', payload, guildId);
    if (interaction.deliveredTo.length === 0) {
      throw new Error(`stand-in: no client is connected to receive guild ${guildId}'s interaction`);
    }
    return { id, token, guildId, channelId: channel.id, userId };
  }

  private guild(guildId: string): GuildSpec {
    const guild = this.guilds.get(guildId);
    if (!guild) throw new Error(`stand-in: no guild ${guildId}`);
    return guild;
  }

  private findCommand(guildId: string, name: string): StoredCommand | undefined {
    return (
      this.state.guildCommands.get(guildId)?.find((c) => c.name === name) ??
      this.state.globalCommands.find((c) => c.name === name)
    );
  }

  /** The options under a subcommand path (`[]` = the command's own options). */
  private leafDefinitions(defs: OptionDefinition[], path: string[]): OptionDefinition[] {
    let level = defs;
    for (const step of path) level = level.find((d) => d.name === step)?.options ?? [];
    return level;
  }
}

function inferType(value: OptionValue): number {
  if (typeof value === 'boolean') return OPTION_TYPE.boolean;
  if (typeof value === 'number') return Number.isInteger(value) ? OPTION_TYPE.integer : OPTION_TYPE.number;
  return OPTION_TYPE.string;
}
