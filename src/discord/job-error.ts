/** An error raised while a known job was being handled: the log line and the answer name the job. */
export class JobError extends Error {
  override name = 'JobError';
  constructor(
    readonly jobId: string,
    cause: unknown,
  ) {
    super(`job ${jobId} failed in the Discord front end`, { cause });
  }
}
