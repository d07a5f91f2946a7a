// The engine as the bot runs it (a worker thread) on the cheap model: main-thread event-loop
// delay while it works, peak RSS, RSS after 5 jobs and after 50 (a leak grows between them; with --expose-gc both after a GC),
// and what the worker boundary adds per step (the same job in this thread vs through the engine).
import { rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadSdModel } from '../src/diffusion/model/sd-model.ts';
import { Pipeline } from '../src/diffusion/pipeline.ts';
import { Engine } from '../src/engine/engine.ts';
import { writeCheapModel } from './cheap-model.ts';
import { benchRequest } from './job.ts';
import { progress } from './progress.ts';

export interface EngineLoopResult {
  jobs: number;
  loopDelayMs: { p50: number; p99: number; max: number };
  rssMb: { after5: number; after50: number; growth: number; peak: number };
  /** (engine job − in-thread job) / steps, µs: messages, structured clone, the result's PNGs. */
  workerPerStepUs: number;
  engineStartMs: number;
}

const mb = (bytes: number) => bytes / 2 ** 20;

export async function measureEngineLoop(jobs: number): Promise<EngineLoopResult> {
  const dir = writeCheapModel('fp32');
  const req = benchRequest();
  const steps = req.steps * 2; // base + hires (denoise 0.5 runs `steps` hires steps, as A1111)
  const settle = () => (globalThis as { gc?: () => void }).gc?.();
  try {
    const s0 = performance.now();
    const engine = await Engine.start({
      modelDir: dir,
      executionProviders: ['cpu'],
      previewEvery: 5,
      timestepRounding: 'fp16',
    });
    const engineStartMs = performance.now() - s0;
    // the same job in this thread and through the worker, in turn so that both see the same load
    const model = await loadSdModel(dir);
    const pipeline = new Pipeline(model, { modelHash: 'bench', previewEvery: 5 });
    const inThread: number[] = [];
    const through: number[] = [];
    for (let i = 0; i < 8; i++) {
      progress(`engine: the job in this thread and through the worker, ${i + 1}/8`);
      let t = performance.now();
      await pipeline.generate(req);
      inThread.push(performance.now() - t);
      t = performance.now();
      await engine.generate(req, { onProgress: () => {} });
      through.push(performance.now() - t);
    }
    await model.release();

    const histogram = monitorEventLoopDelay({ resolution: 1 });
    let after5 = 0;
    let after50 = 0;
    try {
      settle();
      histogram.enable();
      for (let i = 0; i < jobs; i++) {
        progress(`engine: job ${i + 1}/${jobs} through the worker`);
        await engine.generate({ ...req, seed: i }, { onProgress: () => {} });
        if (i === 4) {
          settle();
          after5 = process.memoryUsage().rss;
        }
      }
      histogram.disable();
      settle();
      after50 = process.memoryUsage().rss;
    } finally {
      await engine.close();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    return {
      jobs,
      loopDelayMs: {
        p50: histogram.percentile(50) / 1e6,
        p99: histogram.percentile(99) / 1e6,
        max: histogram.max / 1e6,
      },
      rssMb: {
        after5: mb(after5),
        after50: mb(after50),
        growth: (after50 - after5) / after5,
        peak: process.resourceUsage().maxRSS / 1024,
      },
      workerPerStepUs: ((median(through.slice(2)) - median(inThread.slice(2))) / steps) * 1000,
      engineStartMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
