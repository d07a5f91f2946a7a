// What a submission must pass before anything is charged: the request within the bot's bounds
// (each hires pass's denoise with it), and for an upscale a parent whose base latent is kept.
import type { Db } from '../db/client.ts';
import { CLI_LIMITS, RequestError, type RequestLimits, validateRequest } from '../diffusion/request.ts';
import { UserError } from '../user-error.ts';
import { getJob, hasLatent } from './job-store.ts';
import type { JobSubmission } from './types.ts';

/** The hires passes to run; a UserError naming the option when the request is out of bounds. */
export function checkRequest(input: JobSubmission, limits: RequestLimits = CLI_LIMITS): number[] {
  const denoises = input.denoises ?? [input.request.denoise];
  // each value is checked with the request: an empty list would check nothing
  if (denoises.length === 0) {
    throw new UserError('bad-option', 'denoise must list at least one value', { option: 'denoise' });
  }
  try {
    for (const denoise of denoises) validateRequest({ ...input.request, denoise }, limits);
  } catch (err) {
    if (err instanceof RequestError) {
      throw new UserError('bad-option', err.message, { option: err.option }, { cause: err });
    }
    throw err;
  }
  return denoises;
}

/** An upscale starts from a finished job of this server whose base latent is still stored. */
export async function checkParent(
  db: Db,
  input: JobSubmission,
  lookUp: <T>(what: string, work: () => Promise<T>) => Promise<T>,
): Promise<void> {
  const { parentJobId } = input;
  const parent = parentJobId ? await lookUp('looking up a job', () => getJob(db, parentJobId)) : undefined;
  if (
    !parent ||
    parent.guildId !== input.guildId ||
    parent.kind !== 'imagine' ||
    parent.status !== 'done' ||
    // the retention sweep deletes base latents after LATENT_RETENTION_DAYS
    !(await lookUp('looking up a base latent', () => hasLatent(db, parent.id)))
  ) {
    throw new UserError('not-found', 'That image is no longer available to upscale.', { what: 'image' });
  }
}
