/**
 * Writes a job's outcome: status, base latent and ledger (commit or refund) in one transaction,
 * retried through a database blink. Safe to run twice: an attempt that answered too late is
 * recognised by the row it left.
 */
import { type Db, inTransaction } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import type { Outcome } from './engine-run.ts';
import { finishJob, finishJobWithLatent, getJob } from './job-store.ts';
import { type QuotaScope, settle, settlementOf } from './quota.ts';
import { type RetryOptions, retrying } from './retry.ts';
import type { FinalJobEvent } from './types.ts';

export interface OutcomeToWrite {
  jobId: string;
  /** The process the row must belong to; null: a job still waiting in the shared queue. */
  owner: string | null;
  scope: QuotaScope;
  outcome: Outcome;
}

/**
 * True when the reservation was settled (committed or refunded) here; false when it had been
 * settled before; undefined when another process ended the job (or holds it now).
 */
export function writeOutcome(db: Db, w: OutcomeToWrite, retry: RetryOptions): Promise<boolean | undefined> {
  const { jobId, owner, scope, outcome } = w;
  return retrying(
    'settling a job',
    () =>
      inTransaction(db, async (t) => {
        const extra = {
          ...(outcome.status === 'failed' ? { error: outcome.message } : {}),
          ...(outcome.status === 'done' ? { timings: outcome.timings } : {}),
        };
        const latent = outcome.status === 'done' ? outcome.images.latent : undefined;
        // done with a latent: status and latent in one statement
        const finished = latent
          ? await finishJobWithLatent(t, jobId, owner, extra, latent)
          : await finishJob(t, jobId, owner, outcome.status, extra);
        if (!finished) {
          // ended already: by someone else, or by an attempt of ours that answered too late
          const row = await getJob(t, jobId);
          if (row?.status !== outcome.status || (owner !== null && row.owner !== owner)) return undefined;
          return (await settlementOf(t, scope, jobId)) !== undefined;
        }
        // quota: only a job that produced images is charged
        return settle(t, scope, jobId, outcome.status === 'done' ? 'commit' : 'refund');
      }),
    retry,
  );
}

/**
 * The final event for a handle whose job another process ended or holds (this one looked dead
 * to it, or a cancel ended it there): cancelled or failed there, that outcome; anything else
 * (running there, or done there): 'interrupted', for the process that holds it answers.
 */
export async function outcomeElsewhere(db: Db, jobId: string, scope: QuotaScope): Promise<FinalJobEvent> {
  const row = await getJob(db, jobId).catch(() => undefined);
  const job = row && ({ ...row, interactionToken: null } as JobRow);
  const refunded = async () => (await settlementOf(db, scope, jobId).catch(() => undefined)) === 'refund';
  if (job?.status === 'cancelled') return { type: 'cancelled', jobId, job, refunded: await refunded() };
  if (job?.status === 'failed') {
    const message = job.error ?? 'ended by another bot process';
    return { type: 'failed', jobId, job, reason: 'error', message, refunded: await refunded() };
  }
  return { type: 'interrupted', jobId };
}
