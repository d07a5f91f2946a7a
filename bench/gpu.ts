// `--only gpu`: the full-size random-weight SD 1.5 on a GPU provider (webgpu, cuda, …) beside
// ldm's UNet in PyTorch on the same GPU (bench/torch_cuda.py). Per latent shape the first steps
// (shader compilation, algorithm search) and the warm median; a whole 512→1024 job stage by stage;
// the UNet's output checked against the CPU provider's fp32 result, so a fast but wrong provider
// shows.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { importCheckpoint } from '../src/checkpoint/import.ts';
import { inspectCheckpoint } from '../src/checkpoint/inspect.ts';
import type { Precision } from '../src/checkpoint/onnx-net.ts';
import {
  type LoadOptions,
  loadSdModel,
  providerEntry,
  type SdModel,
} from '../src/diffusion/model/sd-model.ts';
import { GPU_PROVIDERS, inGroup } from '../src/providers.ts';
import { orWriteDown } from './failures.ts';
import { checkProvidersStart, type GpuKernelRates, measureGpuKernelRates } from './gpu-kernel-rates.ts';
import { benchRequest } from './job.ts';
import { profileUnet, type StepProfile } from './op-profile.ts';
import { progress } from './progress.ts';
import { loadAndTime, type RealModelTiming } from './real-model.ts';
import { runTorchCuda, type TorchCuda } from './side-by-side.ts';
import { instrument, runStages, type StageTimings } from './stages.ts';
import { unetGflop } from './unet-flops.ts';
import { runUnet } from './unet-inputs.ts';

export interface GpuOptions {
  checkpoint: string;
  /** Imported folders, one per precision (made from `checkpoint` when missing). */
  modelDir: (dtype: Precision) => string;
  providers: string[];
  dtypes: Precision[];
  /** Layouts to time for webgpu (its `preferredLayout`); the first is also used for the job. */
  layouts: ('NCHW' | 'NHWC')[];
  /** Latent sides timed step by step (64 = 512 px, 128 = 1024 px). */
  latents: number[];
  /** Steps per shape after the first two. */
  warmSteps: number;
  threads: number;
  torch: boolean;
  /** Profile one step per latent side by operator (a session of its own, after the timings). */
  profile: boolean;
  /** Phases that would start after this many seconds are skipped (a lent GPU's time is short). */
  budgetS: number;
  /** Called after each phase with the result so far, so that a run cut short still leaves it. */
  save: (r: GpuResult) => void;
}

export interface GpuVariant {
  dtype: Precision;
  layout?: string;
  timing: RealModelTiming;
}

export interface GpuAccuracy {
  dtype: Precision;
  /** The providers it ran on: the GPU's, or the CPU's for onnxruntime's own fp16 error. */
  on: string[];
  /** ‖gpu − cpu‖ / ‖cpu‖ of the UNet's output at 64×64 (batch 2), against the CPU's fp32. */
  relL2: number;
  maxAbs: number;
}

export interface GpuResult {
  skipped?: string;
  /** The checkpoint's file name. */
  checkpoint?: string;
  providers?: string[];
  importMs?: Partial<Record<Precision, number>>;
  variants?: GpuVariant[];
  /** A whole 512→1024 job (20 base steps, denoise 0.5) on the first variant, after its warm-up. */
  job?: StageTimings & { dtype: Precision };
  accuracy?: GpuAccuracy[];
  /** The UNet's arithmetic per batch-2 step, GFLOP, per latent side (closed form, bench/unet-flops.ts). */
  gflop?: Record<string, number>;
  /** The provider's own MatMul and convolution rates, per precision, with the first layout's options. */
  kernelRates?: GpuKernelRates[];
  torchCuda?: TorchCuda;
  /** The first layout's step by operator, per precision and latent side (`--profile`). */
  profile?: StepProfile[];
  /** Phases left out for time. */
  leftOut?: string[];
  /** Phases that failed, with the first line of the error: the rest still runs. */
  failed?: Record<string, string>;
}

const WEBGPU = 'webgpu';

export async function runGpu(o: GpuOptions): Promise<GpuResult> {
  if (!existsSync(o.checkpoint)) {
    return { skipped: `no ${o.checkpoint}: make it with python3 scripts/make-random-sd15.py` };
  }
  const started = performance.now();
  const out: GpuResult = {
    checkpoint: path.basename(o.checkpoint),
    providers: o.providers,
    importMs: {},
    variants: [],
    accuracy: [],
    leftOut: [],
  };
  const unet = inspectCheckpoint(o.checkpoint).unet;
  out.gflop = Object.fromEntries(o.latents.map((l) => [l, unetGflop(unet, l, l).total]));
  const timeLeft = (phase: string) => {
    if ((performance.now() - started) / 1000 < o.budgetS) return true;
    out.leftOut?.push(phase);
    return false;
  };
  /** Runs a phase; a failure (a lost GPU device, say) is written down and the next phase runs. */
  const phase = async (name: string, run: () => Promise<void>) => {
    if (!timeLeft(name)) return;
    await orWriteDown(out, name, run);
    o.save(out);
  };
  const load = (layout?: string): LoadOptions => ({
    executionProviders: o.providers,
    intraOpThreads: o.threads,
    ...(layout ? { providerOptions: { [WEBGPU]: { preferredLayout: layout } } } : {}),
  });
  // onnxruntime falls back to the CPU where a GPU provider cannot start: every phase would then time
  // the CPU, for minutes of a lent GPU, under the GPU's name
  const onGpu = o.providers.filter((name) => inGroup(GPU_PROVIDERS, name));
  if (onGpu.length > 0) {
    progress(`checking that [${onGpu.join(', ')}] start`);
    await checkProvidersStart(onGpu.map((name) => providerEntry(name, load(o.layouts[0])))).catch(
      (err: Error) => {
        throw new Error(
          `[${onGpu.join(', ')}] cannot start, so nothing would run on the GPU: ${err.message}`,
        );
      },
    );
  }
  const dirs = new Set<Precision>([...o.dtypes, 'fp32']);
  for (const dtype of dirs) {
    const dir = o.modelDir(dtype);
    if (existsSync(dir)) continue;
    progress(`importing ${o.checkpoint} (${dtype}) into ${dir}`);
    const t = performance.now();
    await importCheckpoint(o.checkpoint, dir, { dtype });
    (out.importMs as Record<string, number>)[dtype] = performance.now() - t;
  }
  o.save(out);

  const plan = o.latents.map((latent) => ({ latent, steps: 2 + o.warmSteps }));
  const layouts = o.providers.includes(WEBGPU) ? o.layouts : [undefined];
  // the first variant's model, warm from its timing, stays loaded for the whole job and the
  // accuracy check: each new load costs a lent GPU seconds of session creation and shader builds.
  // Nothing else of ours or PyTorch's is on the GPU meanwhile (a small card has room for one).
  let kept: SdModel | undefined;
  const timeVariant = async (dtype: Precision, layout: string | undefined, keep: boolean) => {
    const label = `${o.providers.join(',')} ${dtype}${layout ? ` ${layout}` : ''}`;
    await phase(label, async () => {
      const { model, timing } = await loadAndTime(
        o.modelDir(dtype),
        label,
        { ...load(layout), log: { info: () => {}, warn: (m) => progress(m) } },
        plan,
      );
      out.variants?.push({ dtype, ...(layout ? { layout } : {}), timing });
      if (keep) kept = model;
      else await model.release();
    });
  };
  // the first variant, its whole job and the accuracy check, the kernel rates, the first precision's
  // other layouts, PyTorch, the profile, then the other precisions: a short lease loses the least
  const [first, ...others] = o.dtypes as [Precision, ...Precision[]];
  try {
    await timeVariant(first, layouts[0], true);

    await phase('whole job', async () => {
      const model = kept ?? (await loadSdModel(o.modelDir(first), load(layouts[0])));
      try {
        const x = instrument(model, 0);
        // the first job warms every shape up (as ENGINE_WARMUP does at start), the VAE's included,
        // which the kept model's timed steps did not run; the second is timed
        progress('whole job: warm-up run');
        await runStages(x, benchRequest());
        progress('whole job: timed run');
        out.job = { dtype: first, ...(await runStages(x, benchRequest())) };
      } finally {
        if (model !== kept) await model.release();
      }
    });

    await phase('accuracy against the CPU', async () => {
      const cpu = await loadSdModel(o.modelDir('fp32'), {
        executionProviders: ['cpu'],
        intraOpThreads: o.threads,
      });
      try {
        const reference = await unetOnce(cpu);
        const check = async (dtype: Precision, model: () => Promise<SdModel>) => {
          const m = await model();
          try {
            out.accuracy?.push({ dtype, on: m.executionProviders, ...compare(await unetOnce(m), reference) });
          } finally {
            // forgotten before it is released: a release that fails is not tried twice
            if (m === kept) kept = undefined;
            await m.release();
          }
        };
        // the kept model first (then released), each other precision loaded afresh on the GPU
        for (const dtype of o.dtypes) {
          await check(dtype, async () =>
            dtype === first && kept ? kept : loadSdModel(o.modelDir(dtype), load(layouts[0])),
          );
        }
        // onnxruntime's CPU kernels on the half-precision graph: the error fp16 weights alone make
        if (o.dtypes.includes('fp16')) {
          await check('fp16', () =>
            loadSdModel(o.modelDir('fp16'), { executionProviders: ['cpu'], intraOpThreads: o.threads }),
          );
        }
      } finally {
        await cpu.release();
      }
    });
  } finally {
    const left = kept;
    kept = undefined;
    // outside every phase: a failed release must not lose the phases after it
    await left
      ?.release()
      .catch((err) => progress(`releasing the first model failed: ${(err as Error)?.message ?? err}`));
  }
  // seconds: what the provider's own kernels reach, the ceiling the steps above are held against
  await phase('kernel rates on the GPU', async () => {
    const providers = o.providers.map((name) => providerEntry(name, load(layouts[0])));
    out.kernelRates = [];
    for (const dtype of o.dtypes) {
      progress(`kernel rates on [${o.providers.join(', ')}], ${dtype}`);
      out.kernelRates.push(await measureGpuKernelRates(dtype, providers));
    }
  });
  for (const layout of layouts.slice(1)) await timeVariant(first, layout, false);

  if (o.torch) {
    await phase('PyTorch on the GPU', async () => {
      out.torchCuda = runTorchCuda([
        '--checkpoint',
        o.checkpoint,
        '--steps',
        String(Math.max(o.warmSteps, 3)),
        '--latents',
        o.latents.join(','),
      ]);
    });
  }

  if (o.profile) {
    await phase('profile by operator', async () => {
      // every precision: the default (fp32 on webgpu) and the one that trails PyTorch furthest
      out.profile = [];
      for (const dtype of o.dtypes) {
        const steps = await profileUnet(o.modelDir(dtype), load(layouts[0]), o.latents, `profile ${dtype}`);
        out.profile.push(...steps.map((step) => ({ ...step, dtype })));
      }
    });
  }
  for (const dtype of others) for (const layout of layouts) await timeVariant(dtype, layout, false);
  return out;
}

/**
 * The UNet's output (eps of two rows, as a CFG step's batch) at 64×64 for fixed inputs: the same
 * measure bench/torch_cuda.py takes of PyTorch's fp16 against its fp32, so the two compare.
 */
export async function unetOnce(model: SdModel): Promise<Float32Array> {
  progress(`accuracy: one UNet run on [${model.executionProviders.join(', ')}]`);
  return runUnet(model.unet, 64);
}

export function compare(got: Float32Array, want: Float32Array): { relL2: number; maxAbs: number } {
  let diff = 0;
  let norm = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    const d = (got[i] as number) - (want[i] as number);
    diff += d * d;
    norm += (want[i] as number) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  // a NaN anywhere must not read as a match
  if (!Number.isFinite(diff) || got.length !== want.length) return { relL2: Number.NaN, maxAbs: Number.NaN };
  return { relL2: Math.sqrt(diff / norm), maxAbs };
}
