// /paste: a form to paste an A1111 infotext as PNG Info shows it (line breaks kept), to rerun it.
import {
  ApplicationCommandType,
  ApplicationIntegrationType,
  ComponentType,
  InteractionContextType,
  TextInputStyle,
} from 'discord.js';
import { buildRequest } from '../src/discord/build-request.ts';
import type { Command } from '../src/discord/command.ts';
import { encodeCustomId } from '../src/discord/custom-id.ts';
import { requesterOf } from '../src/discord/requester.ts';
import { startJob } from '../src/discord/run-job.ts';

/** Discord's longest text input. */
const MODAL_MAX_LENGTH = 4000;
export const PASTE_FIELD = 'parameters';

export default {
  data: () => ({
    type: ApplicationCommandType.ChatInput,
    name: 'paste',
    description: 'Paste an A1111 infotext (PNG Info) to draw it again with the same settings',
    contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
  }),

  async execute(interaction) {
    await interaction.showModal({
      custom_id: encodeCustomId({ action: 'paste' }),
      title: 'Paste A1111 parameters',
      components: [
        {
          type: ComponentType.ActionRow,
          components: [
            {
              type: ComponentType.TextInput,
              custom_id: PASTE_FIELD,
              label: 'Parameters (prompt, negative, settings line)',
              style: TextInputStyle.Paragraph,
              required: true,
              max_length: MODAL_MAX_LENGTH,
              placeholder:
                'a cat\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x512',
            },
          ],
        },
      ],
    });
  },

  modals: ['paste'],
  async onModal(interaction, _id, ctx) {
    const { guildId } = requesterOf(interaction);
    const settings = await ctx.services.guildSettings(guildId);
    const built = buildRequest(
      { prompt: '', parameters: interaction.fields.getTextInputValue(PASTE_FIELD) },
      { settings, model: ctx.services.model() },
    );
    if (!built.ok) throw built.error;
    const { request, notes } = built.value;
    await startJob(interaction, { kind: 'imagine', request, denoises: [request.denoise], notes }, ctx);
  },
} satisfies Command;
