/** A problem with the command line, worded as one line for stderr; the CLI exits with status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
