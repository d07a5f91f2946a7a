// /compare: one base pass and one hires pass per denoise value, as a labelled sheet.
import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationIntegrationType,
  InteractionContextType,
} from 'discord.js';
import { buildRequest, parseDenoiseList } from '../src/discord/build-request.ts';
import type { Command } from '../src/discord/command.ts';
import { promptOption, readGenerationOptions, settingOptions } from '../src/discord/generation-options.ts';
import { requesterOf } from '../src/discord/requester.ts';
import { startJob } from '../src/discord/run-job.ts';

export default {
  data: (limits) => ({
    type: ApplicationCommandType.ChatInput,
    name: 'compare',
    description: 'One base image upscaled at 2 to 4 denoise values, side by side',
    contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
    options: [
      promptOption(limits),
      {
        type: ApplicationCommandOptionType.String,
        name: 'denoise',
        description: '2 to 4 denoise values, e.g. 0.3,0.5,0.7',
        required: true,
        max_length: 40,
      },
      ...settingOptions(limits, { denoise: false }),
    ],
  }),

  async execute(interaction, ctx) {
    const denoises = parseDenoiseList(interaction.options.getString('denoise', true));
    if (!denoises.ok) throw denoises.error;
    const { guildId } = requesterOf(interaction);
    const settings = await ctx.services.guildSettings(guildId);
    const built = buildRequest(
      { ...readGenerationOptions(interaction, { denoise: false }), denoise: denoises.value[0] },
      { settings, model: ctx.services.model(), denoises: denoises.value },
    );
    if (!built.ok) throw built.error;
    const { request, notes } = built.value;
    await startJob(interaction, { kind: 'imagine', request, denoises: denoises.value, notes }, ctx);
  },
} satisfies Command;
