// The import's progress on a terminal: one line redrawn in place. Piped to a file or a log it
// prints a line per 10 %, so a service log shows the import moving without a flood of lines.
import type { ImportProgress } from './import.ts';

const STAGES: Record<ImportProgress['stage'], string> = {
  hashing: 'hashing',
  text_encoder: 'text encoder',
  unet: 'UNet',
  vae_decoder: 'VAE decoder',
  vae_encoder: 'VAE encoder',
};

const WIDTH = 30;

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export function progressBar(stream: ProgressStream, label: string): (p: ImportProgress) => void {
  let lastShown = -1;
  let lastStage = '';
  return (p) => {
    const fraction = p.total > 0 ? p.done / p.total : 1;
    const percent = Math.floor(fraction * 100);
    const stage = STAGES[p.stage];
    if (stream.isTTY) {
      if (percent === lastShown && stage === lastStage) return;
      const filled = Math.round(fraction * WIDTH);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
      stream.write(`\r${label} [${bar}] ${String(percent).padStart(3)}% ${stage.padEnd(12)}`);
      if (p.done >= p.total) stream.write('\n');
    } else {
      const step = Math.floor(percent / 10) * 10;
      if (step === lastShown) return;
      stream.write(`${label}: ${step}% (${stage})\n`);
      lastShown = step;
      return;
    }
    lastShown = percent;
    lastStage = stage;
  };
}
