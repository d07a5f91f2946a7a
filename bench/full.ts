// `--full`: the full-size random-weight SD 1.5 (made by scripts/make-random-sd15.py, imported by
// our importer), its session options compared, and `--torch`: the side by side.
import { existsSync } from 'node:fs';
import { importCheckpoint } from '../src/checkpoint/import.ts';
import { inspectCheckpoint } from '../src/checkpoint/inspect.ts';
import type { LoadOptions } from '../src/diffusion/model/sd-model.ts';
import { orWriteDown } from './failures.ts';
import { type KernelRates, measureKernelRatesApart } from './kernel-rates.ts';
import { profileUnet, type StepProfile } from './op-profile.ts';
import { progress } from './progress.ts';
import { type RealModelTiming, timeRealModel } from './real-model.ts';
import {
  runTorchCuda,
  runTorchSide,
  type TorchCuda,
  type TorchSide,
  torchExportFolder,
} from './side-by-side.ts';
import { type UnetFlops, unetGflop } from './unet-flops.ts';

export interface FullOptions {
  checkpoint: string;
  modelDir: string;
  exportDir: string;
  threads: number;
  /** onnxruntime execution providers for our model (the side by side is CPU only). */
  providers: string[];
  /** Compare session options at 64×64 (two steps each). */
  sessionOptions: boolean;
  torch: boolean;
  /** Profile a 64×64 step of ours by operator. */
  profile: boolean;
  /** Other model folders timed at 64×64 beside ours. */
  also: { dir: string; label: string }[];
}

export interface FullResult {
  skipped?: string;
  importMs?: number;
  ours?: RealModelTiming;
  /** The same model loaded a second time (the OS has the files cached). */
  oursWarmLoad?: RealModelTiming;
  sessionOptions?: RealModelTiming[];
  also?: RealModelTiming[];
  torch?: TorchSide;
  /** PyTorch on the GPU, where there is one. */
  torchCuda?: TorchCuda;
  oursOnTorchExport?: RealModelTiming;
  /** Ours at 64×64 by operator (`--profile`). */
  profile?: StepProfile[];
  /** The UNet's arithmetic per batch-2 step at each latent side, and this CPU's kernel rates. */
  compute?: { gflop: Record<string, UnetFlops>; kernelRates?: KernelRates };
  /** Extras that failed, with the first line of the error: the rest of the run still stands. */
  failed?: Record<string, string>;
}

const SESSION_VARIANTS: { label: string; options: LoadOptions['sessionOptions'] }[] = [
  { label: 'graph optimisation basic', options: { graphOptimizationLevel: 'basic' } },
  { label: 'memory arena off', options: { enableCpuMemArena: false } },
  { label: 'memory pattern off', options: { enableMemPattern: false } },
  { label: 'one intra-op thread', options: { intraOpNumThreads: 1 } },
];

export async function runFull(o: FullOptions): Promise<FullResult> {
  if (!existsSync(o.checkpoint)) {
    return {
      skipped: `no ${o.checkpoint}: make it with python3 scripts/make-random-sd15.py (needs torch, transformers, einops and ldm)`,
    };
  }
  const out: FullResult = {};
  if (!existsSync(o.modelDir)) {
    progress(`importing ${o.checkpoint} (fp32) into ${o.modelDir}`);
    const t = performance.now();
    await importCheckpoint(o.checkpoint, o.modelDir, {
      dtype: 'fp32',
      onProgress: (p) => progress(`import: ${p.stage} ${Math.round((100 * p.done) / p.total)}%`),
    });
    out.importMs = performance.now() - t;
  }
  const base: LoadOptions = { intraOpThreads: o.threads, executionProviders: o.providers };
  // three steps at 64×64 (the first two are the warm-up), two at 128×128: a 128 step takes minutes here
  out.ours = await timeRealModel(o.modelDir, 'ours', base, [
    { latent: 64, steps: 3 },
    { latent: 128, steps: 2 },
  ]);
  out.oursWarmLoad = await timeRealModel(o.modelDir, 'ours, second load', base, []);
  const unet = inspectCheckpoint(o.checkpoint).unet;
  const compute: NonNullable<FullResult['compute']> = {
    gflop: { 64: unetGflop(unet, 64, 64), 128: unetGflop(unet, 128, 128) },
  };
  out.compute = compute;
  // the extras below are listed as FAILED if they fail: the timings above are not lost for them
  if (o.providers[0] === 'cpu') {
    await orWriteDown(out, 'kernel rates', async () => {
      progress("this CPU's kernel rates");
      compute.kernelRates = measureKernelRatesApart(o.threads);
    });
  }
  if (o.profile) {
    await orWriteDown(out, 'profile by operator', async () => {
      out.profile = await profileUnet(o.modelDir, base, [64], 'ours');
    });
  }
  if (o.also.length > 0) {
    out.also = [];
    for (const a of o.also)
      out.also.push(await timeRealModel(a.dir, a.label, base, [{ latent: 64, steps: 3 }]));
  }
  if (o.sessionOptions) {
    out.sessionOptions = [];
    for (const v of SESSION_VARIANTS) {
      out.sessionOptions.push(
        await timeRealModel(o.modelDir, v.label, { ...base, sessionOptions: v.options }, [
          { latent: 64, steps: 3 },
        ]),
      );
    }
  }
  if (o.torch) {
    out.torch = runTorchSide({
      checkpoint: o.checkpoint,
      exportDir: o.exportDir,
      threads: o.threads,
      latents: [64, 128],
      // the export's plain attention holds [2, 8, 16384, 16384] float32 scores at 128×128: 17 GB
      ortLatents: [64],
      steps: 2,
      // onnxruntime on the torch export takes about twice its steady time for its first two runs
      ortSteps: 4,
      reuseExport: true,
    });
    if (!out.torch.skipped && existsSync(o.exportDir)) {
      const folder = torchExportFolder(o.modelDir, o.exportDir);
      out.oursOnTorchExport = await timeRealModel(folder, 'our engine on the torch export', base, [
        { latent: 64, steps: 4 },
      ]);
    }
    out.torchCuda = runTorchCuda();
  }
  return out;
}
