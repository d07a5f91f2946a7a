/**
 * Writes a job's outcome: status, base latent and ledger (commit or refund) in one statement
 * (so one transaction, and one round trip), retried through a database blink. Safe to run twice:
 * an attempt that answered too late is recognised by the row it left.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { compiled } from '../db/compiled.ts';
import type { JobRow } from '../db/schema.ts';
import type { Outcome } from './engine-run.ts';
import { finishing, getJob, latentFor, latentValues } from './job-store.ts';
import { lockKeyOf, settlement, settlementOf, userLock } from './quota.ts';
import { quotaDay } from './quota-day.ts';
import {
  type QuotaScope,
  type QuotaSettings,
  type StandingRow,
  standingSql,
  type Usage,
  usageFrom,
  whoOf,
} from './quota-standing.ts';
import { type RetryOptions, retrying } from './retry.ts';
import type { FinalJobEvent } from './types.ts';

export interface OutcomeToWrite {
  jobId: string;
  /** The process the row must belong to; null: a job still waiting in the shared queue. */
  owner: string | null;
  scope: QuotaScope;
  outcome: Outcome;
  quota: QuotaSettings;
  /** A done job drawn again (recovery.ts isRedraw): its commit stands, unless this run fails. */
  redraw?: boolean;
}

export interface Written {
  /** The reservation was settled (committed or refunded) here; false: it had been before. */
  settled: boolean;
  /** The user's usage after a done job, read by the same statement (undefined when not read). */
  usage?: Usage | undefined;
}

/** What was written; undefined when another process ended the job (or holds it now). */
export function writeOutcome(db: Db, w: OutcomeToWrite, retry: RetryOptions): Promise<Written | undefined> {
  const { jobId, owner, scope, outcome } = w;
  const now = new Date();
  const stored = outcome.status === 'done' ? outcome.images.latent : undefined;
  const latent = stored && latentValues(stored);
  // quota: only a job that produced images is charged
  const kind = outcome.status === 'done' ? 'commit' : 'refund';
  const statement = settleStatement(latent !== undefined, kind, owner === null, w.redraw === true);
  const values: SettleValues = {
    jobId,
    owner,
    status: outcome.status,
    // a text column holds no NUL (an engine's message may): refused, the job would stay running
    error: outcome.status === 'failed' ? outcome.message.replaceAll('\u0000', '\uFFFD') : null,
    timings: outcome.status === 'done' && outcome.timings ? JSON.stringify(outcome.timings) : null,
    shape: latent?.shape ?? null,
    data: latent?.data ?? null,
    lockKey: lockKeyOf(scope),
    ...whoOf(scope),
    day: quotaDay(now, w.quota.resetHourUtc),
  };
  return retrying(
    'settling a job',
    async () => {
      const rows = await statement(db, values);
      const [row] = rows;
      if (Number(row?.finished) === 1) {
        // this statement's snapshot lacks only its own ledger row: a commit, of 0 units
        const usage = outcome.status === 'done' ? usageFrom(rows, scope, w.quota, now) : undefined;
        return { settled: Number(row?.settled) === 1, usage };
      }
      // ended already: by someone else, or by an attempt of ours that answered too late
      const job = await getJob(db, jobId);
      if (job?.status !== outcome.status || (owner !== null && job.owner !== owner)) return undefined;
      return { settled: (await settlementOf(db, scope, jobId)) !== undefined };
    },
    retry,
  );
}

type SettleValues = {
  jobId: string;
  owner: string | null;
  status: Outcome['status'];
  error: string | null;
  timings: string | null;
  shape: string | null;
  data: Buffer | null;
  lockKey: string;
  guildId: string;
  userId: string;
  targets: string[];
  day: string;
};

type SettleRow = StandingRow & { finished: number | string; settled: number | string };

const settleStatements = new Map<string, (db: Db, values: SettleValues) => Promise<SettleRow[]>>();

/**
 * The settle, compiled once per shape: the job row's move is the gate (a conditional update: one
 * process ends a job); the ledger row is written under the user's lock, taken before it (an
 * InitPlan), only if the job moved; the user's standing comes along for the done event (only
 * a done job's event shows the usage).
 */
function settleStatement(withLatent: boolean, kind: 'commit' | 'refund', queued: boolean, redraw: boolean) {
  const key = `${withLatent}:${kind}:${queued}:${redraw}`;
  let statement = settleStatements.get(key);
  if (!statement) {
    statement = compiled<SettleValues, SettleRow>(
      (slot, db) => sql`
        with f as ${finishing(db, slot.jobId, queued ? null : slot.owner, slot.status, slot)},
        ${withLatent ? sql`l as (${latentFor(sql`f`, slot.shape, slot.data)}),` : sql``}
        lk as (select ${userLock(slot.lockKey)} from f),
        s as (${settlement(slot, slot.jobId, kind, sql`(select count(*) from lk) = 1`, redraw && kind === 'refund')})
        select (select count(*) from f) as finished, (select count(*) from s) as settled
        ${kind === 'commit' ? sql`, st.* from (${standingSql(slot, slot.day, null)}) st` : sql``}`,
    );
    settleStatements.set(key, statement);
  }
  return statement;
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
