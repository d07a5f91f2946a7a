/**
 * A new job's record: the quota reservation and the job row in one transaction (nothing is
 * charged for a job that was not queued, and no job is queued unpaid). The ledger row and the job
 * row are written by one statement: a submission is three round trips inside its transaction (the
 * user's lock, the read behind the quota check, the writes).
 */
import { type Db, inTransaction } from '../db/client.ts';
import { type JobRow, jobs, type NewJobRow, usageLedger } from '../db/schema.ts';
import { type QuotaSettings, reservation, type Usage } from './quota.ts';
import type { JobSubmission } from './types.ts';

export async function recordJob(
  db: Db,
  job: { id: string; input: JobSubmission; denoises: number[]; cost: number },
  quota: QuotaSettings,
): Promise<readonly [JobRow, Usage]> {
  const { id, input, denoises, cost } = job;
  const scope = { guildId: input.guildId, userId: input.userId, roleIds: input.roleIds ?? [] };
  const row: NewJobRow = {
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
    status: 'queued',
    // waiting in the shared queue, a job needs no owner and no heartbeat
    owner: null,
    interactionToken: input.interaction?.token ?? null,
    interactionExpiresAt: input.interaction?.expiresAt ?? null,
  };
  return inTransaction(db, async (t) => {
    const { usage, entry } = await reservation(t, scope, { jobId: id, cost }, quota);
    const insert = entry
      ? // an unreferenced data-modifying CTE still runs, in the same statement
        t.with(t.$with('ledger').as(t.insert(usageLedger).values(entry).returning({ id: usageLedger.id })))
      : t;
    const [inserted] = await insert.insert(jobs).values(row).returning();
    return [inserted as JobRow, usage] as const;
  });
}
