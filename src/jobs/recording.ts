/**
 * A new job's record: the quota reservation and the job row in one transaction (nothing is
 * charged for a job that was not queued, and no job is queued unpaid). The ledger row and the job
 * row are written by one statement: a submission is two round trips inside its transaction (the
 * admission lock and count, admission.ts, and the user's lock and the read behind the quota check,
 * pipelined; then the writes).
 */
import { getTableColumns, sql } from 'drizzle-orm';
import type { PgInsertValue } from 'drizzle-orm/pg-core';
import { type Db, inTransaction } from '../db/client.ts';
import { compiled, type Slots } from '../db/compiled.ts';
import { type JobRow, jobs, type NewJobRow, usageLedger } from '../db/schema.ts';
import { type AdmissionLimits, admitInDatabase } from './admission.ts';
import { reservation } from './quota.ts';
import type { QuotaSettings, Usage } from './quota-standing.ts';
import type { JobSubmission } from './types.ts';

export async function recordJob(
  db: Db,
  job: { id: string; input: JobSubmission; denoises: number[]; cost: number },
  quota: QuotaSettings,
  limits: AdmissionLimits,
): Promise<readonly [JobRow, Usage]> {
  const { id, input, denoises, cost } = job;
  const scope = { guildId: input.guildId, userId: input.userId, roleIds: input.roleIds ?? [] };
  const values: JobValues = {
    id,
    kind: input.kind,
    guildId: input.guildId,
    channelId: input.channelId,
    userId: input.userId,
    roleIds: [...(input.roleIds ?? [])],
    request: input.request,
    denoises,
    seed: input.request.seed,
    parentJobId: input.parentJobId ?? null,
    cost,
    interactionToken: input.interaction?.token ?? null,
    interactionExpiresAt: input.interaction?.expiresAt?.toISOString() ?? null,
  };
  return inTransaction(db, async (t) => {
    // both sent before either answer comes back (one round trip), the admission lock first: no
    // transaction holding a user's lock asks for it, so no deadlock; a limit is reported before
    // the quota
    const [admitted, reserved] = await Promise.allSettled([
      admitInDatabase(t, scope, limits),
      reservation(t, scope, { jobId: id, cost }, quota),
    ]);
    if (admitted.status === 'rejected') throw admitted.reason;
    if (reserved.status === 'rejected') throw reserved.reason;
    const { usage, entry } = reserved.value;
    const [inserted] = entry
      ? await insertReserved(t, { ...values, quotaDay: entry.quotaDay, key: entry.idempotencyKey })
      : await insertJob(t, values);
    return [inserted as JobRow, usage] as const;
  });
}

type JobValues = Pick<
  NewJobRow,
  'id' | 'kind' | 'guildId' | 'channelId' | 'userId' | 'roleIds' | 'request' | 'denoises' | 'seed' | 'cost'
> & {
  parentJobId: string | null;
  interactionToken: string | null;
  /** ISO time or null: a timestamp column's encoder takes no null */
  interactionExpiresAt: string | null;
};

/** The job row, waiting in the shared queue: it needs no owner and no heartbeat yet. */
const jobRow = (slot: Slots<JobValues>): PgInsertValue<typeof jobs> => ({
  id: slot.id,
  kind: slot.kind,
  guildId: slot.guildId,
  channelId: slot.channelId,
  userId: slot.userId,
  roleIds: slot.roleIds,
  request: slot.request,
  denoises: slot.denoises,
  seed: slot.seed,
  parentJobId: slot.parentJobId,
  cost: slot.cost,
  interactionToken: slot.interactionToken,
  interactionExpiresAt: sql`${slot.interactionExpiresAt}`,
  status: 'queued',
  owner: null,
});

const returning = getTableColumns(jobs);

/** The job row alone (its reservation was written by an earlier attempt). */
const insertJob = compiled<JobValues, JobRow>(
  (slot, t) => t.insert(jobs).values(jobRow(slot)).returning(),
  returning,
);

/** The job row and its reservation: one statement. */
const insertReserved = compiled<JobValues & { quotaDay: string; key: string }, JobRow>((slot, t) => {
  const entry: PgInsertValue<typeof usageLedger> = {
    guildId: slot.guildId,
    userId: slot.userId,
    jobId: slot.id,
    kind: 'reserve',
    units: slot.cost,
    quotaDay: slot.quotaDay,
    idempotencyKey: slot.key,
  };
  // an unreferenced data-modifying CTE still runs, in the same statement
  const ledger = t.$with('ledger').as(t.insert(usageLedger).values(entry).returning({ id: usageLedger.id }));
  return t.with(ledger).insert(jobs).values(jobRow(slot)).returning();
}, returning);
