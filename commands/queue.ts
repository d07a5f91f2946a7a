// /queue: your jobs with their positions, and how long the queue is.
import { ApplicationCommandType, ApplicationIntegrationType, InteractionContextType } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { renderQueue } from '../src/discord/render/info.ts';
import { toSendOptions } from '../src/discord/reply.ts';
import { requesterOf } from '../src/discord/requester.ts';

export default {
  data: () => ({
    type: ApplicationCommandType.ChatInput,
    name: 'queue',
    description: 'Your jobs waiting or running, and the queue’s length',
    contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
  }),

  async execute(interaction, ctx) {
    await interaction.reply(toSendOptions(renderQueue(await ctx.services.queue(requesterOf(interaction)))));
  },
} satisfies Command;
