// What a member reads when something they can change went wrong (always ephemeral), and the one
// generic answer for everything else: it names the job id so an admin can find the log line.
// A UserError's own message is plain English already; the codes below are worded here from their
// context where Discord can say it better (a relative timestamp, a pointer to /queue).
import type { UserErrorCode, UserErrorContexts } from '../../user-error.ts';
import { ephemeral, type ReplyPayload } from './payload.ts';
import { plural, relative, units } from './text.ts';

/** A UserError as plain data (what crosses from the job service, or comes out of a failed job). */
export interface UserErrorData {
  code: string;
  message: string;
  context: unknown;
}

const CODES: Record<UserErrorCode, true> = {
  'bad-option': true,
  'queue-full': true,
  'user-limit': true,
  'quota-exhausted': true,
  blocked: true,
  'not-found': true,
  'not-allowed': true,
  'already-finished': true,
  'shutting-down': true,
  unavailable: true,
};

export function isUserErrorCode(code: string): code is UserErrorCode {
  return Object.hasOwn(CODES, code);
}

/** The context of `code`, if `err` has that code and a context of the documented shape. */
function contextOf<C extends UserErrorCode>(
  err: UserErrorData,
  code: C,
  keys: (keyof UserErrorContexts[C])[],
): UserErrorContexts[C] | undefined {
  if (err.code !== code || err.context === null || typeof err.context !== 'object') return undefined;
  const c = err.context as Record<PropertyKey, unknown>;
  return keys.every((k) => c[k] !== undefined) ? (err.context as UserErrorContexts[C]) : undefined;
}

/** The sentence for a UserError. */
export function userErrorText(err: UserErrorData): string {
  const quota = contextOf(err, 'quota-exhausted', ['cost', 'remaining', 'budget', 'resetsAt']);
  if (quota) {
    const resetsAt = new Date(quota.resetsAt);
    return `This job costs ${units(quota.cost)} units and you have ${units(quota.remaining)} of ${units(quota.budget)} left today (your quota resets ${relative(resetsAt)}). Fewer steps, a smaller size or a lower hires scale cost less; see /quota.`;
  }
  const full = contextOf(err, 'queue-full', ['waiting']);
  if (full)
    return `The queue is full (${plural(full.waiting, 'job')} waiting or running). Try again in a few minutes.`;
  const limit = contextOf(err, 'user-limit', ['limit']);
  if (limit) {
    return `You already have ${plural(limit.limit, 'job')} queued or running; wait for one to finish or cancel it (see /queue).`;
  }
  if (err.code === 'blocked') {
    return 'You are blocked from generating images in this server. Ask a server admin if you think this is a mistake.';
  }
  return err.message;
}

export function renderUserError(err: UserErrorData): ReplyPayload {
  return ephemeral(`⚠️ ${userErrorText(err)}`);
}

/**
 * Anything that is not the member's doing. `nothingCharged` false: the job was (or may have been)
 * charged, so the answer does not say otherwise.
 */
export function renderInternalError(jobId: string | undefined, nothingCharged = true): ReplyPayload {
  if (jobId && !nothingCharged) {
    return ephemeral(
      `❌ Something went wrong on our side with job \`${jobId}\`. Its units may have been charged; a server admin can look it up in the bot's log.`,
    );
  }
  return ephemeral(
    jobId
      ? `❌ Something went wrong on our side with job \`${jobId}\`. Nothing was charged; a server admin can look it up in the bot's log.`
      : '❌ Something went wrong on our side. Nothing was charged; please try again.',
  );
}
