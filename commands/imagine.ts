// /imagine: a base image and its latent Hires. fix upscale. Owns the buttons under every job reply.
import { ApplicationCommandType, ApplicationIntegrationType, InteractionContextType } from 'discord.js';
import { buildRequest } from '../src/discord/build-request.ts';
import type { Command } from '../src/discord/command.ts';
import { promptOption, readGenerationOptions, settingOptions } from '../src/discord/generation-options.ts';
import { JOB_COMPONENTS, runJobComponent } from '../src/discord/job-components.ts';
import { requesterOf } from '../src/discord/requester.ts';
import { startJob } from '../src/discord/run-job.ts';

export default {
  data: (limits) => ({
    type: ApplicationCommandType.ChatInput,
    name: 'imagine',
    description: 'Draw a picture: a base image and its Hires. fix upscale',
    contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
    options: [promptOption(limits), ...settingOptions(limits, { denoise: true })],
  }),

  async execute(interaction, ctx) {
    const { guildId } = requesterOf(interaction);
    const settings = await ctx.services.guildSettings(guildId);
    const built = buildRequest(readGenerationOptions(interaction, { denoise: true }), {
      settings,
      model: ctx.services.model(),
    });
    if (!built.ok) throw built.error;
    const { request, notes } = built.value;
    await startJob(interaction, { kind: 'imagine', request, denoises: [request.denoise], notes }, ctx);
  },

  components: JOB_COMPONENTS,
  onComponent: runJobComponent,
} satisfies Command;
