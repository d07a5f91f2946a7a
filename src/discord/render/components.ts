// The buttons and the re-upscale menu under a job's reply. Every custom_id carries the job id.
import { ButtonStyle, ComponentType } from 'discord.js';
import { encodeCustomId } from '../custom-id.ts';
import type { ActionRow } from './payload.ts';
import { units } from './text.ts';

/** Denoise values the re-upscale menu offers (A1111's useful range for latent upscales). */
export const REUPSCALE_DENOISES = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8];

export function cancelRow(jobId: string): ActionRow {
  return {
    type: ComponentType.ActionRow,
    components: [
      {
        type: ComponentType.Button,
        style: ButtonStyle.Secondary,
        custom_id: encodeCustomId({ action: 'cancel', jobId }),
        label: 'Cancel',
        emoji: { name: '✖️' },
      },
    ],
  };
}

export function resultRows(o: {
  jobId: string;
  /** Denoise values already made (left out of the menu); none = no menu. */
  denoisesMade: number[] | undefined;
  upscaleCost: number;
}): ActionRow[] {
  const button = (
    action: 'reroll' | 'params' | 'delete',
    label: string,
    emoji: string,
    style: ButtonStyle.Primary | ButtonStyle.Secondary | ButtonStyle.Danger,
  ) => ({
    type: ComponentType.Button as const,
    style,
    custom_id: encodeCustomId({ action, jobId: o.jobId }),
    label,
    emoji: { name: emoji },
  });
  const rows: ActionRow[] = [
    {
      type: ComponentType.ActionRow,
      components: [
        button('reroll', 'Reroll', '🎲', ButtonStyle.Primary),
        button('params', 'Parameters', 'ℹ️', ButtonStyle.Secondary),
        button('delete', 'Delete', '🗑️', ButtonStyle.Danger),
      ],
    },
  ];
  if (o.denoisesMade) {
    const offered = REUPSCALE_DENOISES.filter((d) => !o.denoisesMade?.includes(d));
    rows.push({
      type: ComponentType.ActionRow,
      components: [
        {
          type: ComponentType.StringSelect,
          custom_id: encodeCustomId({ action: 'upscale', jobId: o.jobId }),
          placeholder: `🔁 Re-upscale at another denoise (${units(o.upscaleCost)} units)`,
          min_values: 1,
          max_values: 1,
          options: offered.map((d) => ({
            label: `denoise ${d}`,
            value: String(d),
            description:
              d < 0.5
                ? 'closest to the base image; may come out soft'
                : d >= 0.7
                  ? 'more new detail, drifts from the base'
                  : 'balanced',
          })),
        },
      ],
    });
  }
  return rows;
}
