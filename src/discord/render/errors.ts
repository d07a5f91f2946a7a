// What a member reads when something they can change went wrong (always ephemeral), and the one
// generic answer for everything else: it names the job id so an admin can find the log line.
import type { UserErrorCode } from '../../user-error.ts';
import { ephemeral, type ReplyPayload } from './payload.ts';
import { plural, relative, units } from './text.ts';

const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
const date = (v: unknown) => (v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined);

/** A UserError as plain data (what crosses from the job service, or comes out of a failed job). */
export interface UserErrorData {
  code: string;
  message: string;
  context: Record<string, unknown>;
}

const USER_ERROR_CODES: readonly UserErrorCode[] = [
  'bad-option',
  'queue-full',
  'user-limit',
  'quota-exhausted',
  'blocked',
  'not-found',
  'not-allowed',
  'already-finished',
];

export function isUserErrorCode(code: string): code is UserErrorCode {
  return (USER_ERROR_CODES as readonly string[]).includes(code);
}

/** The sentence for a UserError, from its code and context; its own message where the context is thin. */
export function userErrorText(err: UserErrorData): string {
  const c = err.context;
  switch (err.code) {
    case 'quota-exhausted': {
      const cost = num(c.cost);
      const remaining = num(c.remaining);
      const budget = num(c.budget);
      const resetsAt = date(c.resetsAt);
      if (cost === undefined || remaining === undefined || budget === undefined) return err.message;
      return `This job costs ${units(cost)} units and you have ${units(remaining)} of ${units(budget)} left today${resetsAt ? ` (your quota resets ${relative(resetsAt)})` : ''}. Fewer steps, a smaller size or a lower hires scale cost less; see /quota.`;
    }
    case 'queue-full': {
      const n = num(c.n) ?? num(c.length);
      return n === undefined
        ? err.message
        : `The queue is full (${plural(n, 'job')} waiting or running). Try again in a few minutes.`;
    }
    case 'user-limit': {
      const limit = num(c.limit);
      return limit === undefined
        ? err.message
        : `You already have ${plural(limit, 'job')} queued or running; wait for one to finish or cancel it (see /queue).`;
    }
    case 'blocked':
      return 'You are blocked from generating images in this server. Ask a server admin if you think this is a mistake.';
    case 'bad-option':
      if (typeof c.blockedWord === 'string') {
        return `Your prompt contains “${c.blockedWord}”, which this server does not allow. Remove it and try again.`;
      }
      return err.message;
    default:
      return err.message;
  }
}

export function renderUserError(err: UserErrorData): ReplyPayload {
  return ephemeral(`⚠️ ${userErrorText(err)}`);
}

/** Anything that is not the member's doing. */
export function renderInternalError(jobId: string | undefined): ReplyPayload {
  return ephemeral(
    jobId
      ? `❌ Something went wrong on our side with job \`${jobId}\`. Nothing was charged; a server admin can look it up in the bot's log.`
      : '❌ Something went wrong on our side. Nothing was charged; please try again.',
  );
}
