/**
 * The one error type a user can cause (full queue, spent quota, someone else's job …): a stable
 * code plus plain-data context, from which the front end words its own message (Discord markup,
 * timestamps, mentions). `message` is a plain-English default for logs and the CLI. Everything
 * else is logged and answered with a generic failure and the job id.
 */
export interface UserErrorContexts {
  /** A request option out of range; the message names the option and the range. */
  'bad-option': { option: string };
  'queue-full': { waiting: number; max: number };
  'user-limit': { limit: number };
  'quota-exhausted': { cost: number; remaining: number; budget: number; resetsAt: Date };
  blocked: Record<string, never>;
  /** `command`, `button`: a stale registration or a component from an old version of the bot. */
  'not-found': { what: 'job' | 'image' | 'command' | 'button' };
  'not-allowed': { action: 'cancel' | 'delete' | 'admin'; reason?: 'not-owner' | 'other-process' };
  'already-finished': { status: 'done' | 'failed' | 'cancelled' };
  'shutting-down': Record<string, never>;
  /** A service the request needs (the queue's Redis, the database) did not answer. */
  unavailable: { service: 'queue' | 'database' };
}

export type UserErrorCode = keyof UserErrorContexts;

export class UserError<C extends UserErrorCode = UserErrorCode> extends Error {
  override name = 'UserError';
  constructor(
    readonly code: C,
    message: string,
    readonly context: UserErrorContexts[C],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** Narrows an error to a UserError of one code, with that code's context. */
  static is<C extends UserErrorCode>(err: unknown, code: C): err is UserError<C> {
    return err instanceof UserError && err.code === code;
  }
}

/** The answer to anything new while the bot shuts down (the job service's, and the router's). */
export function shuttingDown(): UserError<'shutting-down'> {
  return new UserError('shutting-down', 'The bot is restarting; try again in a minute.', {});
}
