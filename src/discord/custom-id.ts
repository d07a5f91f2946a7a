/**
 * The custom_id of every button, menu and modal the bot sends: a constant prefix, an action and,
 * for a job's components, the job id. Everything else about the job is in the database, so a
 * button keeps working after a restart. Parsing gives a value, never a throw: a stale or foreign
 * id is an expected case.
 */

export const CUSTOM_ID_PREFIX = 'hb';

/** Components that act on one finished (or running) job. */
export const JOB_ACTIONS = ['reroll', 'upscale', 'params', 'delete', 'cancel'] as const;
export type JobAction = (typeof JOB_ACTIONS)[number];

/** Modals not tied to a job. */
export const MODAL_ACTIONS = ['paste'] as const;
export type ModalAction = (typeof MODAL_ACTIONS)[number];

export type ComponentId = { action: JobAction; jobId: string } | { action: ModalAction };

export type ParsedId = { ok: true; id: ComponentId } | { ok: false; reason: 'foreign' | 'malformed' };

/** Job ids are short base-36 strings (src/jobs/job-store.ts `newJobId`). */
const JOB_ID = /^[0-9a-z]{4,40}$/;

export function encodeCustomId(id: ComponentId): string {
  if ('jobId' in id) {
    if (!JOB_ID.test(id.jobId)) throw new Error(`not a job id: ${id.jobId}`);
    return `${CUSTOM_ID_PREFIX}:${id.action}:${id.jobId}`;
  }
  return `${CUSTOM_ID_PREFIX}:${id.action}`;
}

export function parseCustomId(customId: string): ParsedId {
  const [prefix, action, jobId, ...rest] = customId.split(':');
  if (prefix !== CUSTOM_ID_PREFIX) return { ok: false, reason: 'foreign' };
  if (rest.length > 0 || action === undefined) return { ok: false, reason: 'malformed' };
  if ((JOB_ACTIONS as readonly string[]).includes(action)) {
    if (jobId === undefined || !JOB_ID.test(jobId)) return { ok: false, reason: 'malformed' };
    return { ok: true, id: { action: action as JobAction, jobId } };
  }
  if ((MODAL_ACTIONS as readonly string[]).includes(action) && jobId === undefined) {
    return { ok: true, id: { action: action as ModalAction } };
  }
  return { ok: false, reason: 'malformed' };
}
