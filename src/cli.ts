// Offline generation with the bot's own engine: `npm run generate -- --model DIR --prompt … --out DIR`.
import path from 'node:path';
import { config as loadDotenv } from 'dotenv';
import { CheckpointError } from './checkpoint/checkpoint-error.ts';
import { importSettingsRefused, modelFolder } from './checkpoint/model-folder.ts';
import { type CliJob, parseCliArgs, USAGE, UsageError, usageErrorFor, wantsHelp } from './cli/args.ts';
import { prepareOutDir, writeFilesReplacing } from './cli/out-dir.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { compareSheet } from './diffusion/compare-sheet.ts';
import { type ModelDirLookup, noModelReason, resolveModelDir } from './diffusion/model-dir.ts';
import type { GenerationResult } from './diffusion/pipeline.ts';
import { commandLineBytes, MAX_COMMAND_LINE_BYTES } from './engine/command-line.ts';
import { Engine, EngineError } from './engine/engine.ts';

/** Everything checked before the model loads: flags, settings, the model, the command line, the out folder. */
function prepare(argv: string[]): { job: CliJob; model: FoundModel; providers: string[]; config: Config } {
  const bytes = commandLineBytes();
  if (bytes > MAX_COMMAND_LINE_BYTES) {
    throw new UsageError(
      `the command line is ${bytes} bytes, more than the ${MAX_COMMAND_LINE_BYTES} the engine allows: pass long prompts with --prompt-file FILE and --negative-file FILE`,
    );
  }
  loadDotenv({ quiet: true });
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.problems.join('; '), { cause: err });
    throw err;
  }
  // RNG_SOURCE and ENSD are the defaults of --rng and --ensd, as they are of the bot's requests
  const job = parseCliArgs(argv, { rng: config.generation.rng, ensd: config.generation.ensd });
  const providers = config.model.executionProviders;
  // found as the bot finds MODEL_DIR: a model folder, a checkpoint, or a folder holding one of them
  const model = resolveModelDir(job.modelDir);
  if (!model.ok) throw new UsageError(noModelReason(model, job.modelDir, '--model'));
  const refused = importSettingsRefused(model, [
    { name: '--vae', value: job.vae },
    { name: '--dtype', value: job.dtype },
    { name: 'MODEL_VAE', value: job.vae === undefined ? config.model.vae : undefined },
  ]);
  if (refused) throw new UsageError(refused);
  prepareOutDir(job.outDir);
  return { job, model, providers, config };
}

type FoundModel = Extract<ModelDirLookup, { ok: true }>;

/** The ONNX folder to load: a checkpoint file (or a folder holding just one) is imported into the cache first. */
async function modelDirFor(job: CliJob, model: FoundModel, config: Config): Promise<string> {
  return modelFolder(model, {
    vae: job.vae ?? config.model.vae,
    dtype: job.dtype ?? config.model.dtype,
    executionProviders: config.model.executionProviders,
    cacheDir: config.model.cacheDir,
    progress: process.stderr,
  });
}

async function writeImages(job: CliJob, result: GenerationResult): Promise<void> {
  const out = (name: string) => path.join(job.outDir, name);
  const files: [string, Uint8Array][] = [[out('base.png'), result.base.png]];
  if (result.upscaled.length === 1) {
    const [only] = result.upscaled;
    files.push([out('upscaled.png'), only?.png as Buffer]);
  } else {
    for (const u of result.upscaled) files.push([out(`upscaled-${u.denoise}.png`), u.png]);
    const sheet = await compareSheet(
      result.upscaled.map((u) => ({ png: u.png, label: `denoise ${u.denoise}` })),
    );
    files.push([out('compare.png'), sheet]);
  }
  // all of this run's images or, on a failed write, none of them: never a mixed set
  writeFilesReplacing(files);
  process.stdout.write(
    result.upscaled.length === 1
      ? `${result.upscaled[0]?.infotext}\n`
      : result.upscaled.map((u) => `${u.infotext}\n\n`).join(''),
  );
}

async function main(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let job: CliJob;
  let model: FoundModel;
  let providers: string[];
  let config: Config;
  try {
    ({ job, model, providers, config } = prepare(argv));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(argv.length === 0 ? `${USAGE}\n` : `hiresbot generate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  let engine: Engine;
  try {
    const modelDir = await modelDirFor(job, model, config);
    engine = await Engine.start(
      { modelDir, executionProviders: providers, previewEvery: 0, timestepRounding: 'fp16' },
      {
        // on a GPU provider, say where the model runs (a fallback to the CPU is a warning)
        info: (m) => {
          if (providers.some((p) => p !== 'cpu')) process.stderr.write(`${m}\n`);
        },
        warn: (m) => process.stderr.write(`warning: ${m}\n`),
      },
    );
  } catch (err) {
    if (err instanceof EngineError || err instanceof CheckpointError) {
      process.stderr.write(`hiresbot generate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  try {
    const tty = process.stderr.isTTY;
    const result = await engine.generate(job.request, {
      denoises: job.denoises,
      onProgress: (e) => {
        if (tty) process.stderr.write(`\r${e.pass} ${e.step}/${e.total}   ${e.step === e.total ? '\n' : ''}`);
      },
    });
    await writeImages(job, result);
    return 0;
  } catch (err) {
    // a prompt past the chunk cap is found by the engine, which has the model's tokenizer
    if (err instanceof EngineError && err.kind === 'request' && err.option) {
      process.stderr.write(
        `hiresbot generate: ${usageErrorFor(err.option, err.message, job.textFlags).message}\n`,
      );
      return 2;
    }
    throw err;
  } finally {
    await engine.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`hiresbot generate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
