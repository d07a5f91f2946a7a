// Our per-step overhead, fp32 and fp16: the whole job run in this thread on the cheap model, so
// that what is not inside run() is ours. Previews off (their cost is reported apart) and at the
// bot's default (every 5 steps).
import { loadCheapModel } from './cheap-model.ts';
import { benchRequest } from './job.ts';
import { progress } from './progress.ts';
import { instrument, runStages, type StageTimings } from './stages.ts';

export interface OverheadResult {
  dtype: 'fp32' | 'fp16';
  previewEvery: number;
  /** How many jobs were timed (after a warm-up job). */
  jobs?: number;
  /** µs per step, the median step of the measured jobs. */
  base64: number;
  hires128: number;
  /**
   * The smallest step overhead seen, µs: what our code costs when the thread is not waiting for a
   * core (on a shared machine the median also holds the time other processes took).
   */
  minBase64: number;
  minHires128: number;
  /** The worst single step seen, µs. */
  maxBase64: number;
  maxHires128: number;
  /** One measured job's stages, for the table. */
  stages: StageTimings;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function measureOverhead(jobs: number): Promise<OverheadResult[]> {
  const out: OverheadResult[] = [];
  for (const dtype of ['fp32', 'fp16'] as const) {
    const cheap = await loadCheapModel(dtype);
    try {
      for (const previewEvery of [0, 5]) {
        const x = instrument(cheap.model, previewEvery);
        const req = benchRequest();
        progress(`overhead ${dtype}, previews ${previewEvery || 'off'}: warm-up job`);
        await runStages(x, req);
        const runs: StageTimings[] = [];
        for (let j = 0; j < jobs; j++) {
          progress(`overhead ${dtype}, previews ${previewEvery || 'off'}: job ${j + 1}/${jobs}`);
          runs.push(await runStages(x, req));
        }
        out.push({
          dtype,
          previewEvery,
          jobs,
          base64: median(runs.flatMap((r) => r.base.perStepUs)),
          hires128: median(runs.flatMap((r) => r.hires.perStepUs)),
          minBase64: Math.min(...runs.flatMap((r) => r.base.perStepUs)),
          minHires128: Math.min(...runs.flatMap((r) => r.hires.perStepUs)),
          maxBase64: Math.max(...runs.map((r) => r.base.maxOverheadUs)),
          maxHires128: Math.max(...runs.map((r) => r.hires.maxOverheadUs)),
          stages: runs[runs.length - 1] as StageTimings,
        });
      }
    } finally {
      await cheap.dispose();
    }
  }
  return out;
}
