/**
 * From a rendered ReplyPayload to discord.js, and the message a job's progress and result go to:
 * the interaction's reply while its token lives (15 minutes), a new channel message after that.
 */
import {
  type APIMessage,
  AttachmentBuilder,
  type BaseMessageOptions,
  type Client,
  DiscordAPIError,
  InteractionWebhook,
  MessageFlags,
  Routes,
} from 'discord.js';
import type { ReplyPayload } from './render/payload.ts';

/** Options for a new message (reply, followUp, send). */
export function toSendOptions(p: ReplyPayload): BaseMessageOptions & { flags?: MessageFlags.Ephemeral } {
  return {
    content: p.content,
    files: p.files.map((f) => new AttachmentBuilder(f.data, { name: f.name })),
    components: p.components,
    allowedMentions: p.allowedMentions,
    ...(p.ephemeral ? { flags: MessageFlags.Ephemeral } : {}),
  };
}

/** Options for an edit: the files replace every attachment the message had. */
export function toEditOptions(p: ReplyPayload): BaseMessageOptions & { attachments: [] } {
  const { flags: _ephemeralIsFixedAtCreation, ...rest } = toSendOptions(p);
  return { ...rest, attachments: [] };
}

/** Discord's answers for a webhook token that no longer works. */
export function isExpiredToken(err: unknown): boolean {
  return err instanceof DiscordAPIError && (err.code === 50027 || err.code === 10015);
}

/**
 * Discord's answer to a second acknowledgement. Sent for the bot's only one, it means Discord took
 * it and its answer was lost (a 5xx after it acted, and discord.js retried): the reply exists.
 */
export function isAlreadyAcknowledged(err: unknown): boolean {
  return err instanceof DiscordAPIError && err.code === 40060;
}

/** The job's reply as Discord holds it: what the member sees. */
export interface ShownReply {
  id: string;
  content: string;
  attachments: { filename: string; size: number }[];
}

/** Where a job's messages go. */
export interface ReplyTarget {
  /** Edits the job's reply; resolves with its message id. */
  edit(p: ReplyPayload): Promise<string>;
  /** Reads the job's reply back; undefined when it is gone (10008 Unknown Message). */
  original(): Promise<ShownReply | undefined>;
  /** Posts a new message in the job's channel (the reply's token has expired), as a reply to `replyTo`. */
  post(p: ReplyPayload, replyTo?: string): Promise<string>;
  /** Whether the token is (about to be) too old to edit with. */
  expired(): boolean;
}

/** Interaction tokens live 15 minutes; stop using one a little before. */
export const TOKEN_MARGIN_MS = 30_000;

export function tokenTarget(o: {
  /** A logged-in client, or (a worker) one that never logs in: only its REST side is used. */
  client: Client;
  applicationId: string;
  token: string;
  expiresAt: Date;
  channelId: string;
  now?: () => number;
}): ReplyTarget {
  // InteractionWebhook uses only the client's REST side
  const webhook = new InteractionWebhook(o.client as Client<true>, o.applicationId, o.token);
  const now = o.now ?? Date.now;
  return {
    async edit(p) {
      const message = await webhook.editMessage('@original', toEditOptions(p));
      return message.id;
    },
    async original() {
      try {
        const m = (await o.client.rest.get(Routes.webhookMessage(o.applicationId, o.token, '@original'), {
          auth: false,
        })) as APIMessage;
        return {
          id: m.id,
          content: m.content,
          attachments: m.attachments.map((a) => ({ filename: a.filename, size: a.size })),
        };
      } catch (err) {
        if (err instanceof DiscordAPIError && err.code === 10008) return undefined;
        throw err;
      }
    },
    async post(p, replyTo) {
      const channel = await o.client.channels.fetch(o.channelId);
      if (!channel?.isSendable()) throw new Error(`cannot post in channel ${o.channelId}`);
      const { flags: _ephemeral, ...options } = toSendOptions(p);
      const message = await channel.send({
        ...options,
        ...(replyTo
          ? {
              reply: { messageReference: replyTo, failIfNotExists: false },
              allowedMentions: { ...p.allowedMentions, repliedUser: false },
            }
          : {}),
      });
      return message.id;
    },
    expired: () => now() > o.expiresAt.getTime() - TOKEN_MARGIN_MS,
  };
}
