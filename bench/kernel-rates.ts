// This CPU's ceiling as onnxruntime reaches it, with the model's thread count: the rate of a
// large float32 MatMul and of a 3×3 convolution at a UNet layer's size (640 channels on 32×32,
// batch 2), the two kernels nearly all of a UNet step's arithmetic runs in. A step's GFLOP over its
// time, against the faster of the two, says how much is left for a better graph to win.
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/diffusion/model/onnx-graph.ts';
import { wave } from './unet-inputs.ts';

export interface KernelRates {
  /** The side of the square matrices. */
  n: number;
  threads: number;
  /** The MatMul's rate: the fastest of the timed runs. */
  gflops: number;
  /** The 3×3 convolution's rate (absent from older results). */
  convGflops?: number;
}

/** The fastest of `runs` timed runs (after an untimed first, which packs and allocates), GFLOP/s: a
 * dozen, so that a burst of other work on a shared machine rarely covers them all. */
async function rate(
  model: Uint8Array,
  feeds: Record<string, ort.Tensor>,
  flop: number,
  threads: number,
  runs: number,
) {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    executionProviders: ['cpu'],
  });
  try {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i <= runs; i++) {
      const t = performance.now();
      await session.run(feeds);
      if (i > 0) best = Math.min(best, performance.now() - t);
    }
    return flop / (best / 1000) / 1e9;
  } finally {
    await session.release();
  }
}

export async function measureKernelRates(
  threads: number,
  n = 2048,
  runs = 12,
  conv = { channels: 640, side: 32 },
): Promise<KernelRates> {
  const mm = new GraphBuilder();
  mm.input('a', 'float32', [n, n]);
  mm.input('b', 'float32', [n, n]);
  mm.op('MatMul', ['a', 'b'], {}, 'c');
  mm.output('c', 'float32', [n, n]);
  const square = new ort.Tensor('float32', wave(n * n, 1, 0.5), [n, n]);
  const gflops = await rate(mm.encode('kernel-rates'), { a: square, b: square }, 2 * n ** 3, threads, runs);

  // the weights are constants, as in the UNet: onnxruntime packs them once (and picks its
  // blocked-layout convolution kernel where the CPU has one)
  const { channels: c, side } = conv;
  const cv = new GraphBuilder();
  cv.input('x', 'float32', [2, c, side, side]);
  const w = cv.constTensor('float32', [c, c, 3, 3], new Uint8Array(wave(c * c * 9, 0.7, 0.5).buffer), 'w');
  cv.op('Conv', ['x', w], { pads: [1, 1, 1, 1] }, 'y');
  cv.output('y', 'float32', [2, c, side, side]);
  const x = new ort.Tensor('float32', wave(2 * c * side * side, 0.3, 0.5), [2, c, side, side]);
  const convGflops = await rate(
    cv.encode('conv-rate'),
    { x },
    2 * 2 * side * side * c * c * 9,
    threads,
    runs,
  );
  return { n, threads, gflops, convGflops };
}

/** The faster kernel's rate: the ceiling a whole step is measured against. */
export const fastestRate = (p: KernelRates) => Math.max(p.gflops, p.convGflops ?? 0);

/**
 * The same in a fresh process: inside the bench's own, after its other parts, the convolution's
 * rate came out at 118 and 168 GFLOPS where a fresh process measured 223–228 every time.
 */
export function measureKernelRatesApart(threads: number): KernelRates {
  const run = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, String(threads)], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (run.status !== 0) {
    // an uncaught error's message, not the source line tsx prints above it
    const lines = `${run.stderr ?? ''}\n${run.stdout ?? ''}`.split('\n').map((l) => l.trim());
    const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.filter(Boolean).at(-1);
    throw new Error(
      `kernel rates: ${why ?? `the measuring process ended (${run.signal ?? run.error?.message ?? run.status})`}`,
    );
  }
  const peak = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as KernelRates;
  const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
  if (!positive(peak.gflops) || !positive(peak.convGflops))
    throw new Error(`kernel rates: not rates: ${run.stdout.trim()}`);
  return peak;
}

if (process.argv[1] === import.meta.filename) {
  console.log(JSON.stringify(await measureKernelRates(Number(process.argv[2]))));
}
