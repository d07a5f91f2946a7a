// The JSON shapes the local Discord sends: users, members, guilds, channels, messages. Every field
// discord.js 14 reads when it builds its structures is present (see shared/docs/discord-wire.md).
import { PermissionFlagsBits } from 'discord.js';

export interface RoleSpec {
  id: string;
  name: string;
  permissions?: bigint;
}

export interface ChannelSpec {
  id: string;
  name?: string;
}

export interface MemberSpec {
  id: string;
  username?: string;
  roles?: string[];
}

export interface GuildSpec {
  id: string;
  name?: string;
  ownerId?: string;
  /** What @everyone may do; default: view, send, attach, embed, read history, use commands. */
  everyone?: bigint;
  roles?: RoleSpec[];
  channels?: ChannelSpec[];
  members?: MemberSpec[];
}

export const DEFAULT_EVERYONE =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.ReadMessageHistory |
  PermissionFlagsBits.UseApplicationCommands;

const ALL_PERMISSIONS = Object.values(PermissionFlagsBits).reduce((all, bit) => all | bit, 0n);

const EPOCH = 1420070400000n;
let sequence = 0;

/** A fresh numeric snowflake (discord.js reads timestamps out of ids), made `at` (default now). */
export function snowflake(at = Date.now()): string {
  sequence = (sequence + 1) & 0xfff;
  return (((BigInt(Math.round(at)) - EPOCH) << 22n) | BigInt(sequence)).toString();
}

export function userJson(id: string, username = `user${id.slice(-4)}`, bot = false) {
  return {
    id,
    username,
    discriminator: '0',
    global_name: bot ? null : username,
    avatar: null,
    bot,
    system: false,
    public_flags: 0,
  };
}

export function roleJson(guildId: string, role: RoleSpec, position: number) {
  return {
    id: role.id,
    name: role.id === guildId ? '@everyone' : role.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position,
    permissions: String(role.permissions ?? 0n),
    managed: false,
    mentionable: false,
    flags: 0,
  };
}

export function channelJson(guildId: string, channel: ChannelSpec, position: number) {
  return {
    id: channel.id,
    type: 0,
    guild_id: guildId,
    name: channel.name ?? `channel-${position}`,
    position,
    permission_overwrites: [],
    nsfw: false,
    parent_id: null,
    topic: null,
    last_message_id: null,
    rate_limit_per_user: 0,
    flags: 0,
  };
}

/** The member's permissions as Discord computes them for a guild channel without overwrites. */
export function memberPermissions(guild: GuildSpec, member: MemberSpec | undefined): bigint {
  if (member && guild.ownerId === member.id) return ALL_PERMISSIONS;
  let bits = guild.everyone ?? DEFAULT_EVERYONE;
  for (const roleId of member?.roles ?? []) {
    bits |= guild.roles?.find((r) => r.id === roleId)?.permissions ?? 0n;
  }
  return bits & PermissionFlagsBits.Administrator ? ALL_PERMISSIONS : bits;
}

export function memberJson(member: MemberSpec, joinedAt: string) {
  return {
    user: userJson(member.id, member.username),
    nick: null,
    avatar: null,
    banner: null,
    roles: member.roles ?? [],
    joined_at: joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0,
    pending: false,
    communication_disabled_until: null,
  };
}

export function guildCreateJson(guild: GuildSpec, botUserId: string, joinedAt: string) {
  const roles = [
    { id: guild.id, name: '@everyone', permissions: guild.everyone ?? DEFAULT_EVERYONE },
    ...(guild.roles ?? []),
  ];
  const members = [...(guild.members ?? []), { id: botUserId, username: 'hiresbot' }];
  return {
    id: guild.id,
    name: guild.name ?? `guild-${guild.id.slice(-4)}`,
    icon: null,
    splash: null,
    discovery_splash: null,
    banner: null,
    description: null,
    features: [],
    owner_id: guild.ownerId ?? botUserId,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    mfa_level: 0,
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    public_updates_channel_id: null,
    vanity_url_code: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    preferred_locale: 'en-US',
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    unavailable: false,
    large: false,
    joined_at: joinedAt,
    member_count: members.length,
    roles: roles.map((r, i) => roleJson(guild.id, r, i)),
    channels: (guild.channels ?? []).map((c, i) => channelJson(guild.id, c, i)),
    members: members.map((m) => memberJson(m, joinedAt)),
    emojis: [],
    stickers: [],
    threads: [],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  };
}
