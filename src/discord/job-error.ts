/** An error raised while a known job was being handled: the log line and the answer name the job. */
export class JobError extends Error {
  override name = 'JobError';
  constructor(
    readonly jobId: string,
    cause: unknown,
    /**
     * Whether the member surely paid nothing for it: false once the job was charged, or when a
     * cancel that would have refunded it did not go through (the answer must not promise it).
     */
    readonly nothingCharged = true,
  ) {
    super(`job ${jobId} failed in the Discord front end`, { cause });
  }
}
