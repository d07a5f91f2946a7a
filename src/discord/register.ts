/**
 * Slash-command registration on start: one GET of what Discord has, and a PUT only when our
 * definitions differ from it (compared as normalised JSON, since Discord adds ids, versions and
 * defaults). Guild-scoped when DISCORD_GUILD_ID is set (instant, for testing), else global.
 */
import { DiscordAPIError, OAuth2Scopes, PermissionFlagsBits, type REST, Routes } from 'discord.js';
import type { CommandData } from './command.ts';

/**
 * What the bot asks for when invited, and why. Replies to interactions are webhooks and need no
 * channel permission at all; these cover the one case where the bot writes as itself: a job that
 * outlives its 15-minute interaction token is posted as a new channel message.
 * - View Channel, Send Messages: to post that message.
 * - Attach Files: it carries the images.
 * - Read Message History: it is sent as a reply to the job's earlier progress message.
 * Embed Links is not asked for: the bot sends no embeds and no links to unfurl.
 */
export const INVITE_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.ReadMessageHistory;

export function inviteUrl(applicationId: string, guildId?: string): string {
  const params = new URLSearchParams({
    client_id: applicationId,
    scope: [OAuth2Scopes.Bot, OAuth2Scopes.ApplicationsCommands].join(' '),
    permissions: String(INVITE_PERMISSIONS),
  });
  if (guildId) params.set('guild_id', guildId);
  return `https://discord.com/oauth2/authorize?${params}`;
}

type Json = Record<string, unknown>;

function pick(source: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const k of keys) if (source[k] !== undefined && source[k] !== null) out[k] = source[k];
  return out;
}

function normaliseOption(o: Json): Json {
  return {
    type: o.type,
    name: o.name,
    description: o.description,
    required: o.required ?? false,
    autocomplete: o.autocomplete ?? false,
    ...pick(o, ['min_value', 'max_value', 'min_length', 'max_length', 'channel_types']),
    choices: ((o.choices as Json[] | undefined) ?? []).map((c) => ({ name: c.name, value: c.value })),
    options: ((o.options as Json[] | undefined) ?? []).map(normaliseOption),
  };
}

/** The fields that define a command, with Discord's defaults filled in and its own fields dropped. */
export function normaliseCommand(c: Json): Json {
  return {
    type: c.type ?? 1,
    name: c.name,
    description: c.description,
    default_member_permissions: c.default_member_permissions ?? null,
    nsfw: c.nsfw ?? false,
    contexts: c.contexts ?? null,
    integration_types: c.integration_types ?? [0],
    options: ((c.options as Json[] | undefined) ?? []).map(normaliseOption),
  };
}

export function sameCommands(remote: readonly Json[], local: readonly Json[]): boolean {
  const canonical = (list: readonly Json[]) =>
    JSON.stringify(list.map(normaliseCommand).sort((a, b) => String(a.name).localeCompare(String(b.name))));
  return canonical(remote) === canonical(local);
}

export interface RegisterOptions {
  rest: REST;
  applicationId: string;
  guildId: string | undefined;
  commands: readonly CommandData[];
}

export interface RegisterResult {
  scope: 'guild' | 'global';
  updated: boolean;
}

export async function registerCommands(o: RegisterOptions): Promise<RegisterResult> {
  const route = o.guildId
    ? Routes.applicationGuildCommands(o.applicationId, o.guildId)
    : Routes.applicationCommands(o.applicationId);
  const scope = o.guildId ? 'guild' : 'global';
  try {
    const remote = (await o.rest.get(route)) as Json[];
    if (sameCommands(remote, o.commands as unknown as Json[])) return { scope, updated: false };
    await o.rest.put(route, { body: o.commands });
    return { scope, updated: true };
  } catch (err) {
    if (o.guildId && err instanceof DiscordAPIError && err.code === 50001) {
      throw new Error(
        `the bot is not in the server DISCORD_GUILD_ID=${o.guildId}; invite it with ${inviteUrl(o.applicationId, o.guildId)}`,
        { cause: err },
      );
    }
    throw err;
  }
}
