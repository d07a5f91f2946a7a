// `--from FILE`: a saved run's full-size part and profiles checked before its table is printed. A file no run
// writes (a hand edit, a truncated copy) is one line naming the field, never NaN, Infinity or a
// made-up "met" in the table.
import type { FullResult } from './full.ts';
import type { OpTime, StepProfile } from './op-profile.ts';
import type { RealModelTiming } from './real-model.ts';

/** A figure a run could have written: finite, above zero, below a billion (ms, s, GFLOP, GFLOP/s). */
const figure = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0 && x < 1e9;
const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

function checkTiming(t: unknown, where: string): void {
  if (t === undefined) return;
  const timing = t as Partial<RealModelTiming> | null;
  if (!isObject(timing)) throw new Error(`${where}: not an object`);
  if (timing.loadMs !== undefined && !(timing.loadMs === 0 || figure(timing.loadMs)))
    throw new Error(`${where}.loadMs: not a time`);
  if (!Array.isArray(timing.shapes)) throw new Error(`${where}.shapes: not a list`);
  for (const shape of timing.shapes) {
    if (!Array.isArray(shape?.stepsMs) || !shape.stepsMs.every(figure))
      throw new Error(`${where}: a step time that is not a positive number of ms`);
  }
}

function checkSteps(steps: unknown, where: string): void {
  if (steps === undefined) return;
  if (!isObject(steps)) throw new Error(`${where}: not an object`);
  for (const [latent, list] of Object.entries(steps)) {
    if (!Array.isArray(list) || !list.every(figure))
      throw new Error(`${where}.${latent}: not a list of step times`);
  }
}

export function checkFull(full: unknown): void {
  if (!isObject(full)) return;
  const f = full as FullResult;
  checkTiming(f.ours, 'full.ours');
  checkTiming(f.oursWarmLoad, 'full.oursWarmLoad');
  checkTiming(f.oursOnTorchExport, 'full.oursOnTorchExport');
  for (const [i, t] of (Array.isArray(f.also) ? f.also : []).entries()) checkTiming(t, `full.also.${i}`);
  for (const [i, t] of (Array.isArray(f.sessionOptions) ? f.sessionOptions : []).entries())
    checkTiming(t, `full.sessionOptions.${i}`);
  if (isObject(f.torch)) {
    checkSteps(f.torch.pytorch, 'full.torch.pytorch');
    checkSteps(f.torch.ort, 'full.torch.ort');
  }
  checkedProfiles(f.profile, 'full');
  const failed = f.failed as unknown;
  if (failed !== undefined && (!isObject(failed) || Object.values(failed).some((v) => typeof v !== 'string')))
    throw new Error('full.failed: not a map of phases to reasons');
  const c = f.compute as unknown;
  if (c === undefined) return;
  if (!isObject(c)) throw new Error('full.compute: not an object');
  const { gflop, kernelRates } = c as NonNullable<FullResult['compute']>;
  if (!isObject(gflop)) throw new Error('full.compute.gflop: not an object');
  for (const [latent, g] of Object.entries(gflop)) {
    if (!figure((g as { total?: unknown } | null)?.total))
      throw new Error(`full.compute.gflop.${latent}.total: not a positive number`);
  }
  if (kernelRates !== undefined) {
    const m = kernelRates as Partial<typeof kernelRates> | null;
    const whole = (x: unknown) => Number.isInteger(x) && (x as number) >= 1;
    if (
      !figure(m?.gflops) ||
      !whole(m?.n) ||
      !whole(m?.threads) ||
      (m?.convGflops !== undefined && !figure(m.convGflops))
    )
      throw new Error(
        'full.compute.kernelRates: needs positive gflops (and convGflops) and whole n and threads',
      );
  }
}

/** A GPU run's closed-form arithmetic and kernel rates, or an error naming the field (for --from). */
export function checkGpuRates(gflop: unknown, kernelRates: unknown): void {
  if (gflop !== undefined && (!isObject(gflop) || !Object.values(gflop).every(figure)))
    throw new Error('gpu.gflop: not a map of latent sides to positive GFLOP');
  if (kernelRates === undefined) return;
  if (!Array.isArray(kernelRates)) throw new Error('gpu.kernelRates: not a list');
  const whole = (x: unknown) => Number.isInteger(x) && (x as number) >= 1;
  for (const [i, k] of kernelRates.entries()) {
    if (
      !isObject(k) ||
      typeof k.dtype !== 'string' ||
      !figure(k.matmulTflops) ||
      !figure(k.convTflops) ||
      !whole(k.n) ||
      !whole(k.chain) ||
      !isObject(k.conv) ||
      !whole(k.conv.channels) ||
      !whole(k.conv.side)
    )
      throw new Error(
        `gpu.kernelRates.${i}: needs a dtype, positive matmulTflops and convTflops, whole n, chain and conv sizes`,
      );
  }
}

/** A time a profile could hold: 0 (nothing ran) or from a microsecond to a billion ms. */
const time = (x: unknown): x is number =>
  typeof x === 'number' && Number.isFinite(x) && (x === 0 || (x >= 1e-3 && x < 1e9));

/** A saved `profile` list, or an error naming what is wrong with it (for --from). */
export function checkedProfiles(profiles: unknown, where: string): StepProfile[] | undefined {
  if (profiles === undefined) return undefined;
  const bad = (what: string) => new Error(`${where}.profile: ${what}`);
  if (!Array.isArray(profiles)) throw bad('not a list');
  profiles.forEach((p: Partial<StepProfile> | null, i) => {
    if (typeof p !== 'object' || p === null) throw bad(`entry ${i} is not an object`);
    if (!Number.isInteger(p.latent) || (p.latent as number) < 1 || (p.latent as number) > 1024)
      throw bad(`entry ${i} has no whole latent side`);
    if (!time(p.stepMs) || !time(p.kernelMs)) throw bad(`entry ${i} needs finite stepMs and kernelMs ≥ 0`);
    if (!['gpu', 'cpu', 'none'].includes(p.source as string)) throw bad(`entry ${i} has an unknown source`);
    if (p.dtype !== undefined && p.dtype !== 'fp16' && p.dtype !== 'fp32')
      throw bad(`entry ${i} has a dtype other than fp16 or fp32`);
    if (!Array.isArray(p.ops)) throw bad(`entry ${i} has no ops list`);
    let sum = 0;
    for (const o of p.ops as Partial<OpTime>[]) {
      if (
        typeof o?.op !== 'string' ||
        !time(o.ms) ||
        !Number.isInteger(o.kernels) ||
        (o.kernels as number) < 0
      )
        throw bad(`entry ${i} has an op without a name, finite ms ≥ 0 and a kernel count`);
      sum += o.ms;
    }
    // opTimes writes kernelMs as the ops' sum: a share of more than the whole is a hand edit
    if (Math.abs(sum - (p.kernelMs as number)) > 1e-6 * Math.max(1, sum))
      throw bad(`entry ${i}'s kernelMs is not the sum of its ops' ms`);
  });
  return profiles as StepProfile[];
}
