// A reply as plain data: what every render function returns and what the router turns into
// discord.js options. Nothing here can ping anyone unless a builder names the user explicitly.
import type { APIActionRowComponent, APIComponentInMessageActionRow } from 'discord.js';

export interface FileOut {
  name: string;
  data: Buffer;
}

export type ActionRow = APIActionRowComponent<APIComponentInMessageActionRow>;

export interface ReplyPayload {
  content: string;
  /** On an edit these replace every attachment the message had. */
  files: FileOut[];
  components: ActionRow[];
  ephemeral: boolean;
  /** `parse: []` always; `users` only where a message deliberately names its owner. */
  allowedMentions: { parse: []; users?: string[] };
}

/** Discord's limit on a message's text. */
export const MAX_CONTENT = 2000;

export function payload(content: string, extra: Partial<Omit<ReplyPayload, 'content'>> = {}): ReplyPayload {
  return {
    content: content.length > MAX_CONTENT ? `${content.slice(0, MAX_CONTENT - 1)}…` : content,
    files: extra.files ?? [],
    components: extra.components ?? [],
    ephemeral: extra.ephemeral ?? false,
    allowedMentions: extra.allowedMentions ?? { parse: [] },
  };
}

export function ephemeral(content: string): ReplyPayload {
  return payload(content, { ephemeral: true });
}
