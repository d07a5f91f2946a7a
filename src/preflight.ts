// What `npm start` needs before it can run the bot, as one short line per missing piece.
import { existsSync, statSync } from 'node:fs';
import { CheckpointError } from './checkpoint/checkpoint-error.ts';
import { inspectCheckpoint } from './checkpoint/inspect.ts';
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
  if (config.role !== 'all' && !config.database.url) {
    missing.push(
      `PROCESS_ROLE=${config.role} needs DATABASE_URL: the gateway and its workers share one PostgreSQL (PGlite serves one process only).`,
    );
  }
  // a gateway loads no model
  if (config.role === 'gateway') return missing;
  const model = resolveModelDir(config.model.dir);
  if (!model.ok) {
    const where = config.model.dir;
    if (model.reason === 'several') {
      missing.push(
        `MODEL_DIR (${where}) holds several models (${model.candidates.join(', ')}): set MODEL_DIR to one of them.`,
      );
    } else {
      missing.push(
        `No Stable Diffusion model in ${where}${existsSync(where) ? '' : ' (folder not found)'}: drop an SD 1.x .safetensors checkpoint or an SD 1.5 ONNX folder (with unet/model.onnx) into ${where}/ — see README "Get a model", or set MODEL_DIR.`,
      );
    }
  }
  const vae = config.model.vae;
  const vaeOk = !vae || statSync(vae, { throwIfNoEntry: false })?.isFile();
  if (!vaeOk) {
    missing.push(`MODEL_VAE (${vae}) is not a file: set it to a VAE .safetensors file, or leave it empty.`);
  }
  if (model.ok && model.kind === 'checkpoint' && vaeOk) {
    try {
      inspectCheckpoint(model.file, vae);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      missing.push(err.message);
    }
  }
  return missing;
}
