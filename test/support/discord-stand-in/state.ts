// What the local Discord remembers: messages (with every edit), attachments' bytes, interactions
// and their acknowledgement, registered commands, and a log of every REST request.

import type { UploadedFile } from './body.ts';
import type { Delivery } from './gateway.ts';
import { snowflake, userJson } from './payloads.ts';

/** The stand-in's time: real time plus whatever the test advanced it by. */
export class Clock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}

export interface StoredAttachment {
  id: string;
  filename: string;
  contentType: string;
  size: number;
  url: string;
  bytes: Buffer;
}

export interface MessageEdit {
  /** Stand-in clock time of the edit. */
  at: number;
  body: Record<string, unknown>;
  files: string[];
}

export interface StoredMessage {
  id: string;
  channelId: string;
  guildId: string | undefined;
  content: string;
  embeds: unknown[];
  components: unknown[];
  attachments: StoredAttachment[];
  flags: number;
  /** Set when the message came from an interaction (a reply, a followup): the app's id. */
  webhookId: string | undefined;
  /** The allowed_mentions of the request that created the message and of every edit. */
  allowedMentions: unknown[];
  createdAt: number;
  edits: MessageEdit[];
  deleted: boolean;
}

export interface InteractionState {
  id: string;
  token: string;
  type: number;
  guildId: string;
  channelId: string;
  userId: string;
  createdAt: number;
  ack: { type: number; at: number } | undefined;
  /** After a 4/5 callback: the reply; after 6/7: the message the component sits on. */
  originalId: string | undefined;
  componentMessageId: string | undefined;
  /** The modal a type 9 callback showed. */
  modal: Record<string, unknown> | undefined;
  /** The gateway sessions the interaction was dispatched to (its guild's shard). */
  deliveredTo: Delivery[];
}

export interface LoggedRequest {
  method: string;
  /** The route template, e.g. `PATCH /webhooks/:app/:token/messages/@original`. */
  route: string;
  path: string;
  query: URLSearchParams;
  /** The JSON body, or the multipart `payload_json`. */
  body: unknown;
  files: { index: string; filename: string; size: number }[];
  status: number;
  /** Stand-in clock time at which the request arrived. */
  at: number;
  /** For interaction and webhook routes: the token in the path. */
  token: string | undefined;
  messageId: string | undefined;
}

export interface StoredCommand extends Record<string, unknown> {
  id: string;
  name: string;
}

const MESSAGE_FLAG_LOADING = 128;

export class StandInState {
  readonly clock = new Clock();
  readonly messages = new Map<string, StoredMessage>();
  readonly interactions = new Map<string, InteractionState>();
  readonly attachments = new Map<string, StoredAttachment>();
  readonly log: LoggedRequest[] = [];
  readonly globalCommands: StoredCommand[] = [];
  readonly guildCommands = new Map<string, StoredCommand[]>();
  private listeners = new Set<() => void>();

  constructor(
    readonly applicationId: string,
    readonly botUserId: string,
    readonly baseUrl: () => string,
  ) {}

  interactionByToken(token: string): InteractionState | undefined {
    for (const i of this.interactions.values()) if (i.token === token) return i;
    return undefined;
  }

  record(entry: LoggedRequest): void {
    this.log.push(entry);
    for (const l of this.listeners) l();
  }

  /** Calls `check` after every logged request until it returns a value. */
  waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const listener = () => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`stand-in: timed out waiting for ${what}`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  createMessage(o: {
    channelId: string;
    guildId: string | undefined;
    webhookId: string | undefined;
    body: Record<string, unknown>;
    files: UploadedFile[];
    loading?: boolean;
  }): StoredMessage {
    const message: StoredMessage = {
      id: snowflake(),
      channelId: o.channelId,
      guildId: o.guildId,
      content: '',
      embeds: [],
      components: [],
      attachments: [],
      flags: 0,
      webhookId: o.webhookId,
      allowedMentions: [],
      createdAt: this.clock.now(),
      edits: [],
      deleted: false,
    };
    this.apply(message, o.body, o.files);
    if (o.loading) message.flags |= MESSAGE_FLAG_LOADING;
    this.messages.set(message.id, message);
    return message;
  }

  editMessage(message: StoredMessage, body: Record<string, unknown>, files: UploadedFile[]): void {
    message.flags &= ~MESSAGE_FLAG_LOADING;
    this.apply(message, body, files);
    message.edits.push({ at: this.clock.now(), body, files: files.map((f) => f.filename) });
  }

  /** Applies a message payload as Discord does: absent fields stay, `attachments` lists what remains. */
  private apply(message: StoredMessage, body: Record<string, unknown>, files: UploadedFile[]): void {
    if (typeof body.content === 'string') message.content = body.content;
    if (Array.isArray(body.embeds)) message.embeds = body.embeds;
    if (Array.isArray(body.components)) message.components = body.components;
    if (typeof body.flags === 'number') message.flags = (message.flags & ~0xffff) | body.flags;
    message.allowedMentions.push(body.allowed_mentions);
    const uploaded = new Map(files.map((f) => [f.index, this.storeAttachment(message.channelId, f)]));
    if (Array.isArray(body.attachments)) {
      const kept: StoredAttachment[] = [];
      for (const a of body.attachments as { id: string | number }[]) {
        const id = String(a.id);
        const found = uploaded.get(id) ?? message.attachments.find((x) => x.id === id);
        if (found) kept.push(found);
      }
      message.attachments = kept;
    } else if (uploaded.size > 0) {
      message.attachments = [...message.attachments, ...uploaded.values()];
    }
  }

  private storeAttachment(channelId: string, file: UploadedFile): StoredAttachment {
    const id = snowflake();
    const stored: StoredAttachment = {
      id,
      filename: file.filename,
      contentType: file.contentType,
      size: file.bytes.length,
      url: `${this.baseUrl()}/attachments/${channelId}/${id}/${encodeURIComponent(file.filename)}`,
      bytes: file.bytes,
    };
    this.attachments.set(id, stored);
    return stored;
  }

  messageJson(message: StoredMessage) {
    const edited = message.edits.at(-1);
    return {
      id: message.id,
      type: message.webhookId ? 20 : 0,
      channel_id: message.channelId,
      ...(message.guildId ? { guild_id: message.guildId } : {}),
      author: userJson(this.botUserId, 'hiresbot', true),
      content: message.content,
      timestamp: new Date(message.createdAt).toISOString(),
      edited_timestamp: edited ? new Date(edited.at).toISOString() : null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: message.attachments.map((a) => ({
        id: a.id,
        filename: a.filename,
        size: a.size,
        url: a.url,
        proxy_url: a.url,
        content_type: a.contentType,
      })),
      embeds: message.embeds,
      components: message.components,
      pinned: false,
      flags: message.flags,
      ...(message.webhookId ? { webhook_id: message.webhookId, application_id: message.webhookId } : {}),
    };
  }
}
