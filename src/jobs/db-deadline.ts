// A user's request waits for the database at most so long: a hung server must not hold a
// submission (and the user's admission slot) for ever.
import { UserError } from '../user-error.ts';

/** The database did not answer a user's request in time (it may still do so later). */
export class NoAnswerError extends Error {
  override name = 'NoAnswerError';
}

/** `work`, or a NoAnswerError once the database has not answered it for `ms` (default 10 s). */
export async function answered<T>(what: string, work: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  work.catch(() => {}); // an answer after the deadline is not an unhandled error
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new NoAnswerError(`${what}: no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function databaseUnavailable(cause: unknown): UserError {
  return new UserError(
    'unavailable',
    'The database did not answer; try again in a minute.',
    { service: 'database' },
    { cause },
  );
}
