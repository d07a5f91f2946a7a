/**
 * The one edit a job's reply gets when the job goes back to the queue after it ran (its worker
 * stopped or died): "Queued again" instead of a progress bar that would otherwise stand still
 * until a worker takes it. Through the stored interaction token only, while it is valid: a
 * job whose token has expired is left as it is (its result is posted in the channel later).
 */
import type { Client } from 'discord.js';
import type { FrontEndLog } from './command.ts';
import { errorForLog } from './log-error.ts';
import { renderHandedBack } from './render/status.ts';
import { storedReply } from './run-job.ts';
import type { HandedBackJob } from './services.ts';

export async function sayHandedBack(
  client: Client,
  applicationId: string,
  job: HandedBackJob,
  log: FrontEndLog,
): Promise<void> {
  const { target, view } = storedReply(client, applicationId, job);
  // no token, or too old: its result is posted in the channel later
  if (target.expired()) return;
  const { info } = job;
  try {
    await target.edit(renderHandedBack(view));
    log.info({ jobId: info.jobId }, 'told the member their job is queued again');
  } catch (err) {
    log.warn({ err: errorForLog(err), jobId: info.jobId }, 'could not say a job is queued again');
  }
}
