// What `npm start` needs before it can run the bot, as one short line per missing piece.
import { statSync } from 'node:fs';
import { CheckpointError } from './checkpoint/checkpoint-error.ts';
import { inspectCheckpoint } from './checkpoint/inspect.ts';
import { importSettingsRefused } from './checkpoint/model-folder.ts';
import type { Config } from './config.ts';
import { noModelReason, resolveModelDir } from './diffusion/model-dir.ts';

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
  if (!model.ok) missing.push(noModelReason(model, config.model.dir, 'MODEL_DIR'));
  const vae = config.model.vae;
  const vaeOk = !vae || statSync(vae, { throwIfNoEntry: false })?.isFile();
  if (!vaeOk) {
    missing.push(`MODEL_VAE (${vae}) is not a file: set it to a VAE .safetensors file, or leave it empty.`);
  }
  const refused = model.ok && importSettingsRefused(model, [{ name: 'MODEL_VAE', value: vae }]);
  if (refused) missing.push(`${refused}: leave MODEL_VAE empty.`);
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
