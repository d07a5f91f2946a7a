// Who is asking, from an interaction: ids, roles, and Manage Server as Discord computed it for
// this member in this channel (the server-side check behind every admin action).
import { type BaseInteraction, GuildMember, PermissionFlagsBits } from 'discord.js';
import type { Requester } from './services.ts';

export function isAdmin(interaction: BaseInteraction): boolean {
  return interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) ?? false;
}

export function requesterOf(interaction: BaseInteraction): Requester {
  if (!interaction.inGuild() || !interaction.channelId) {
    // every command is registered for servers only, so only a crafted interaction gets here
    throw new Error('an interaction from outside a server');
  }
  const member = interaction.member;
  const roleIds = member instanceof GuildMember ? [...member.roles.cache.keys()] : [...member.roles];
  return {
    guildId: interaction.guildId,
    channelId: interaction.channelId,
    userId: interaction.user.id,
    roleIds: roleIds.filter((id) => id !== interaction.guildId),
    isAdmin: isAdmin(interaction),
  };
}
