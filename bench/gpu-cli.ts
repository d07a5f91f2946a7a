// `npm run bench -- --only gpu`: its flags checked before anything loads (a bad one is one line and
// exit 2, never minutes of import first), then bench/gpu.ts, its table and its results file.
import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { CheckpointError } from '../src/checkpoint/checkpoint-error.ts';
import type { Precision } from '../src/checkpoint/onnx-net.ts';
import { executionProviderList } from '../src/config.ts';
import { type GpuResult, runGpu } from './gpu.ts';
import { gpuRatios, gpuTable } from './gpu-summary.ts';
import { progressDone } from './progress.ts';

export interface GpuFlags {
  providers: string;
  dtypes: string;
  layouts: string;
  latents: string;
  'warm-steps': string;
  'budget-s': string;
  threads: string;
  checkpoint: string;
  model: string;
  out?: string | undefined;
  torch: boolean;
  profile: boolean;
}

const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** The imported folder of a precision: the fp32 folder's name with its precision swapped. */
export function modelDirOf(fp32Dir: string, dtype: Precision): string {
  if (dtype === 'fp32') return fp32Dir;
  const base = path.basename(fp32Dir);
  return path.join(
    path.dirname(fp32Dir),
    base.includes('fp32') ? base.replace('fp32', dtype) : `${base}-${dtype}`,
  );
}

export async function gpuOnly(flags: GpuFlags, usage: (message: string) => never): Promise<never> {
  const dtypes = [...new Set(list(flags.dtypes))];
  if (dtypes.length === 0 || dtypes.some((d) => d !== 'fp16' && d !== 'fp32'))
    usage(`--dtypes takes fp16 and/or fp32 (got "${flags.dtypes}")`);
  const layouts = [...new Set(list(flags.layouts))];
  if (layouts.length === 0 || layouts.some((l) => l !== 'NCHW' && l !== 'NHWC'))
    usage(`--layouts takes NCHW and/or NHWC (got "${flags.layouts}")`);
  const latents = [...new Set(list(flags.latents).map(Number))];
  if (latents.length === 0 || latents.some((l) => !Number.isInteger(l) || l < 8 || l > 256 || l % 8 !== 0))
    usage(`--latents takes latent sides from 8 to 256, multiples of 8 (got "${flags.latents}")`);
  // the same names and spelling rules as EXECUTION_PROVIDERS
  const parsed = executionProviderList.safeParse(flags.providers);
  if (!parsed.success) usage(`--providers ${parsed.error.issues[0]?.message} (got "${flags.providers}")`);
  const providers: string[] = parsed.data;
  if (providers.every((p) => p === 'cpu'))
    usage('--only gpu needs a GPU provider in --providers or EXECUTION_PROVIDERS (e.g. webgpu or cuda,cpu)');
  const outFile = flags.out ?? path.join(import.meta.dirname, 'results-gpu.json');
  try {
    accessSync(path.dirname(outFile), constants.W_OK);
  } catch (err) {
    usage(`--out ${outFile}: ${(err as Error).message}`);
  }
  if (statSync(outFile, { throwIfNoEntry: false })?.isDirectory()) usage(`--out ${outFile} is a folder`);
  // a missing checkpoint is a note (the bench's other parts say the same); anything but a
  // regular file (a folder, a FIFO that would block the import for ever) is refused
  const kind = statSync(flags.checkpoint, { throwIfNoEntry: false });
  if (kind && !kind.isFile()) usage(`--checkpoint ${flags.checkpoint} is not a regular file`);

  const machine = {
    date: new Date().toISOString(),
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    node: process.version,
  };
  const save = (gpu: GpuResult) =>
    writeFileSync(
      outFile,
      `${JSON.stringify({ machine, gpu, ratios: { oursGpuOverPyTorchCuda: gpuRatios(gpu) } }, null, 2)}\n`,
    );
  let gpu: GpuResult;
  try {
    gpu = await runGpu({
      checkpoint: flags.checkpoint,
      modelDir: (dtype) => modelDirOf(flags.model, dtype),
      providers,
      dtypes: dtypes as Precision[],
      layouts: layouts as ('NCHW' | 'NHWC')[],
      latents,
      warmSteps: Number(flags['warm-steps']),
      threads: Number(flags.threads),
      torch: flags.torch,
      profile: flags.profile,
      budgetS: Number(flags['budget-s']),
      save,
    });
  } catch (err) {
    // what runs outside the timed phases (they write their own failures down): the import, whose
    // refusal of a file that is not a checkpoint names the flag, and the results file's writes
    const message = (err as Error).message.split('\n')[0];
    usage(
      err instanceof CheckpointError
        ? `--checkpoint ${flags.checkpoint}: ${message}`
        : `--only gpu: ${message}`,
    );
  }
  save(gpu);
  progressDone();
  console.log(gpuTable(gpu));
  console.log(`\nwrote ${outFile}`);
  // nothing timed and something failed: a script running the bench must see it
  const failedAll = Object.keys(gpu.failed ?? {}).length > 0 && (gpu.variants?.length ?? 0) === 0;
  process.exit(failedAll ? 1 : 0);
}
