// What `npm start` needs before it can run the bot, as one short line per missing piece.
import { existsSync } from 'node:fs';
import type { Config } from './config.ts';
import { resolveModelDir } from './diffusion/model-dir.ts';

export interface PreflightInput {
  config: Config;
  /** Whether a `.env` file was found in the working directory. */
  envFileFound: boolean;
}

export function missingForBot({ config, envFileFound }: PreflightInput): string[] {
  const missing: string[] = [];
  if (!config.discord.token) {
    missing.push(
      envFileFound
        ? 'DISCORD_TOKEN is not set: put your bot token (Discord Developer Portal → your app → Bot → Reset Token) in .env.'
        : 'DISCORD_TOKEN is not set and there is no .env file: run `cp .env.example .env` and put your bot token in it.',
    );
  }
  const model = resolveModelDir(config.model.dir);
  if (!model.ok) {
    const where = config.model.dir;
    if (model.reason === 'several') {
      missing.push(
        `MODEL_DIR (${where}) holds several model folders (${model.candidates.join(', ')}): set MODEL_DIR to one of them.`,
      );
    } else {
      missing.push(
        `No Stable Diffusion ONNX model in ${where}${existsSync(where) ? '' : ' (folder not found)'}: export or download an SD 1.5 ONNX folder (with unet/model.onnx) into ${where}/ — see README "Get a model", or set MODEL_DIR.`,
      );
    }
  }
  return missing;
}
