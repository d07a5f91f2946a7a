// /quota: what is left today, what a default job costs, when the budget resets.
import { ApplicationCommandType, ApplicationIntegrationType, InteractionContextType } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { renderQuota } from '../src/discord/render/info.ts';
import { toSendOptions } from '../src/discord/reply.ts';
import { requesterOf } from '../src/discord/requester.ts';

export default {
  data: () => ({
    type: ApplicationCommandType.ChatInput,
    name: 'quota',
    description: 'How much of your daily image budget is left here',
    contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
  }),

  async execute(interaction, ctx) {
    const requester = requesterOf(interaction);
    const [usage, settings] = await Promise.all([
      ctx.services.usage(requester),
      ctx.services.guildSettings(requester.guildId),
    ]);
    const defaultCost = ctx.services.cost('imagine', { ...settings.defaults, prompt: '', seed: 0 }, 1);
    await interaction.reply(toSendOptions(renderQuota(usage, defaultCost)));
  },
} satisfies Command;
