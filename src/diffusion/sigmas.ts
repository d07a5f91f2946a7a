/**
 * Sigma schedules by A1111 v1.10 name (`modules/sd_schedulers.py`, k-diffusion `get_sigmas_*`),
 * each `steps` values followed by a final 0, in float32 as torch computes them.
 */
import { type DiscreteSchedule, torchLinspace } from './schedule.ts';

const f = Math.fround;

export const SCHEDULERS = ['Automatic', 'Uniform', 'Karras', 'Exponential'] as const;
export type Scheduler = (typeof SCHEDULERS)[number];
/** The label A1111 resolves "Automatic" to, or keeps as "Automatic" for the model's own schedule. */
export type ResolvedScheduler = Exclude<Scheduler, 'Automatic'> | 'Automatic';

/** `external.py::DiscreteSchedule.get_sigmas`: t = linspace(999, 0, n) → t_to_sigma, then 0. */
export function uniformSigmas(schedule: DiscreteSchedule, steps: number): Float32Array {
  const ts = torchLinspace(schedule.sigmas.length - 1, 0, steps);
  const out = new Float32Array(steps + 1);
  ts.forEach((t, i) => {
    out[i] = schedule.tToSigma(t);
  });
  return out;
}

/** `sampling.py::get_sigmas_karras` with rho 7 and the model's σmin/σmax. */
export function karrasSigmas(schedule: DiscreteSchedule, steps: number, rho = 7): Float32Array {
  const minInvRho = schedule.sigmaMin ** (1 / rho);
  const maxInvRho = schedule.sigmaMax ** (1 / rho);
  const span = f(minInvRho - maxInvRho);
  const ramp = torchLinspace(0, 1, steps);
  const out = new Float32Array(steps + 1);
  ramp.forEach((r, i) => {
    out[i] = f(f(f(maxInvRho) + f(r * span)) ** rho);
  });
  return out;
}

/** `sampling.py::get_sigmas_exponential`: log-linear from σmax to σmin. */
export function exponentialSigmas(schedule: DiscreteSchedule, steps: number): Float32Array {
  const logs = torchLinspace(Math.log(schedule.sigmaMax), Math.log(schedule.sigmaMin), steps);
  const out = new Float32Array(steps + 1);
  logs.forEach((l, i) => {
    out[i] = f(Math.exp(l));
  });
  return out;
}

export function sigmasFor(
  schedule: DiscreteSchedule,
  scheduler: ResolvedScheduler,
  steps: number,
): Float32Array {
  switch (scheduler) {
    case 'Karras':
      return karrasSigmas(schedule, steps);
    case 'Exponential':
      return exponentialSigmas(schedule, steps);
    default:
      return uniformSigmas(schedule, steps);
  }
}
