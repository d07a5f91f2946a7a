/**
 * The hires pass's schedule from its steps and denoise: A1111 v1.10
 * `sd_samplers_common.setup_img2img_steps` with the steps given, as `sample_hr_pass` calls it.
 * The sampler builds a schedule of trunc(steps / min(denoise, 0.999)) levels and runs its last
 * `steps` of them, starting at index t_enc = steps − 1 from the end.
 */
import { RequestError } from './request-error.ts';
import { SD1_TIMESTEPS } from './schedule.ts';

/**
 * The longest schedule any pass may use: the model's 1000 training timesteps. A1111's DDIM grid
 * (`1000 // steps`) fails beyond it, and for the σ samplers a longer schedule only means a denoise
 * so small that the hires pass adds less than a training timestep's noise per step, while the
 * schedule's memory grows without bound (denoise 0.000001 → 150 million levels).
 */
export const MAX_SCHEDULE_STEPS = SD1_TIMESTEPS;

export interface HiresSchedule {
  /** Levels in the whole schedule the hires pass is cut from. */
  total: number;
  /** Index into that schedule (counted from its noisy end) where the pass starts. */
  tEnc: number;
}

/** The smallest denoise whose schedule for `steps` hires steps fits in MAX_SCHEDULE_STEPS. */
export function minDenoise(steps: number): number {
  return steps / MAX_SCHEDULE_STEPS;
}

/** Throws a RequestError naming `denoise` when the schedule would exceed MAX_SCHEDULE_STEPS. */
export function hiresSchedule(steps: number, denoise: number): HiresSchedule {
  const total = Math.trunc(steps / Math.min(denoise, 0.999));
  if (!(total <= MAX_SCHEDULE_STEPS)) {
    throw new RequestError(
      'denoise',
      `must be at least ${minDenoise(steps)} with ${steps} hires steps (got ${denoise}); lower values need a schedule of more than ${MAX_SCHEDULE_STEPS} steps`,
    );
  }
  return { total, tEnc: steps - 1 };
}
