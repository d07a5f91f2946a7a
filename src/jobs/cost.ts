/**
 * What a job costs against a daily quota: its GPU work, pixels × steps of every pass, in units
 * of one 512×512, 30-step image. A1111's hires pass always runs `hiresSteps || steps` steps,
 * whatever the denoise, so denoise does not change the price.
 */
import { type GenerationRequest, hiresSize } from '../diffusion/request.ts';

export const UNIT_WORK = 512 * 512 * 30;

export type JobKind = 'imagine' | 'upscale';

export function jobCost(kind: JobKind, req: GenerationRequest, hiresPasses: number): number {
  const base = kind === 'imagine' ? req.width * req.height * req.steps : 0;
  const target = hiresSize(req);
  const hires = target.width * target.height * (req.hiresSteps || req.steps) * hiresPasses;
  return Math.round(((base + hires) / UNIT_WORK) * 100) / 100;
}
