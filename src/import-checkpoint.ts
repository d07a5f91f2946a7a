// `npm run import-checkpoint -- FILE.safetensors [--vae VAE.safetensors] [--dtype fp32|fp16] --out DIR`:
// an A1111 single-file SD 1.x checkpoint → an ONNX folder the bot and the CLI load, in TypeScript
// alone (no Python, no network).
import { parseArgs } from 'node:util';
import { config as loadDotenv } from 'dotenv';
import { CheckpointError } from './checkpoint/checkpoint-error.ts';
import { importCheckpoint, removeUnfinishedImports } from './checkpoint/import.ts';
import type { Precision } from './checkpoint/onnx-net.ts';
import { choosePrecision } from './checkpoint/precision.ts';
import { progressBar } from './checkpoint/progress-bar.ts';
import { dtypeFlag } from './cli/dtype-flag.ts';
import { UsageError } from './cli/usage-error.ts';
import { executionProviderList } from './config.ts';
import { problemLine } from './config-secrets.ts';

const USAGE =
  'usage: npm run import-checkpoint -- FILE.safetensors [--vae VAE.safetensors] [--dtype fp32|fp16] --out DIR';

function parse(argv: string[]): { file: string; vae?: string; dtype: Precision; out: string } {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  const { values, positionals } = parsed;
  const [file, ...extra] = positionals;
  if (!file) throw new UsageError('a checkpoint file is required (FILE.safetensors)');
  if (extra.length > 0) throw new UsageError(`one checkpoint at a time (also got ${extra.join(', ')})`);
  if (!values.out) throw new UsageError('--out DIR is required (the folder to write)');
  const dtype = dtypeFlag(values.dtype);
  // the one setting an import reads, and only to choose a precision: the bot's other settings
  // (a Discord id, QUEUE_MAX, …) are none of its business, right or wrong
  let providers: readonly string[] = [];
  if (dtype === undefined) {
    loadDotenv({ quiet: true });
    const parsed = executionProviderList.safeParse(process.env.EXECUTION_PROVIDERS || undefined);
    if (!parsed.success)
      throw new UsageError(
        `${problemLine(process.env, 'EXECUTION_PROVIDERS', parsed.error.issues[0]?.message ?? 'is not valid')} (or give --dtype)`,
      );
    providers = parsed.data;
  }
  return {
    file,
    ...(values.vae ? { vae: values.vae } : {}),
    dtype: choosePrecision(dtype, providers),
    out: values.out,
  };
}

const FLAGS = {
  vae: { type: 'string' },
  dtype: { type: 'string' },
  out: { type: 'string' },
} as const;

async function main(argv: string[]): Promise<number> {
  let job: ReturnType<typeof parse>;
  try {
    job = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(argv.length === 0 ? `${USAGE}\n` : `hiresbot import-checkpoint: ${err.message}\n`);
    return 2;
  }
  const started = performance.now();
  try {
    const { source, structure } = await importCheckpoint(job.file, job.out, {
      dtype: job.dtype,
      vae: job.vae,
      onProgress: progressBar(process.stderr, `importing ${job.file} (${job.dtype})`),
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const { unet, clip } = structure;
    process.stdout.write(
      `imported ${source.model.name} [${source.model.sha256.slice(0, 10)}]${source.vae ? ` with VAE ${source.vae.name} [${source.vae.sha256.slice(0, 10)}]` : ''} into ${job.out} (${job.dtype}) in ${seconds} s: UNet ${unet.modelChannels} wide × ${unet.channelMult.join('/')}, CLIP ${clip.layers} layers × ${clip.hidden}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof CheckpointError) {
      process.stderr.write(`hiresbot import-checkpoint: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// Ctrl-C or a stop: the half-written folder goes too, then the usual exit status of that signal.
// npm runs this under `node --import tsx`, not the tsx wrapper, which SIGKILLs a child that does
// not answer a relayed signal within 60 ms (a part's graph is written without yielding).
for (const [signal, status] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    removeUnfinishedImports();
    process.stderr.write(`\nhiresbot import-checkpoint: stopped by ${signal}; nothing was written\n`);
    process.exit(status);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`hiresbot import-checkpoint: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
