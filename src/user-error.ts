/**
 * The one error type a user can cause (full queue, spent quota, someone else's job …): a stable
 * code plus a short message meant to be shown as is. Everything else is logged and answered with
 * a generic failure and the job id.
 */
export type UserErrorCode =
  | 'bad-option'
  | 'queue-full'
  | 'user-limit'
  | 'quota-exhausted'
  | 'blocked'
  | 'not-found'
  | 'not-allowed'
  | 'already-finished';

export class UserError extends Error {
  override name = 'UserError';
  constructor(
    readonly code: UserErrorCode,
    message: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
