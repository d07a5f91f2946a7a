/**
 * Daily quotas over the append-only usage ledger. Every function takes (db, scope): a user in a
 * guild; nothing here reads or writes another user's rows. Reservations are serialised per user
 * with a transaction-scoped advisory lock, so N concurrent requests against a budget that fits k
 * accept exactly k, on PGlite and on PostgreSQL alike.
 */
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { type Db, inTransaction } from '../db/client.ts';
import { compiled, type Value } from '../db/compiled.ts';
import { type NewLedgerRow, usageLedger } from '../db/schema.ts';
import { UserError } from '../user-error.ts';
import { quotaDay } from './quota-day.ts';
import {
  type QuotaScope,
  type QuotaSettings,
  round2,
  standing,
  type Usage,
  usageOf,
  type Who,
} from './quota-standing.ts';

/** The key of a user's lock (userLock). */
export const lockKeyOf = (scope: QuotaScope): string => `quota:${scope.guildId}:${scope.userId}`;

/** The per-user lock that serialises a user's ledger writes, to the end of the transaction. */
export function userLock(key: Value): SQL {
  return sql`pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
}

async function lockUser(db: Db, scope: QuotaScope): Promise<void> {
  await lockStatement(db, { key: lockKeyOf(scope) });
}

/** The transaction-long lock of a key (a user's, admission's), compiled: every new job takes two. */
export const lockStatement = compiled<{ key: string }>((slot) => sql`select ${userLock(slot.key)}`);

/** Sum of a user's ledger units on a quota day, of the rows that also meet `only`. */
async function unitsOn(db: Db, scope: QuotaScope, day: string, only?: SQL): Promise<number> {
  const [row] = await db
    .select({ units: sql<number>`coalesce(sum(${usageLedger.units}), 0)`.mapWith(Number) })
    .from(usageLedger)
    .where(
      and(
        eq(usageLedger.guildId, scope.guildId),
        eq(usageLedger.userId, scope.userId),
        eq(usageLedger.quotaDay, day),
        only,
      ),
    );
  return round2(row?.units ?? 0);
}

const usedOn = (db: Db, scope: QuotaScope, day: string) => unitsOn(db, scope, day);

/**
 * Reserves `cost` for a job, or throws a UserError (blocked / not enough left): the user's usage
 * after it, and the ledger row the caller writes (with the job row, in one statement), undefined
 * when the job was reserved already. Call inside a transaction: it takes the user's lock first,
 * held until the transaction ends; idempotent per job id.
 */
export async function reservation(
  tx: Db,
  scope: QuotaScope,
  job: { jobId: string; cost: number },
  settings: QuotaSettings,
  now = new Date(),
): Promise<{ usage: Usage; entry: NewLedgerRow | undefined }> {
  const key = `${job.jobId}:reserve`;
  // read after the lock, in a statement of its own: its snapshot then sees every earlier
  // reservation; sent with the lock, not after its answer (pipelined: one round trip)
  const [, read] = await Promise.all([
    lockUser(tx, scope),
    standing(tx, scope, quotaDay(now, settings.resetHourUtc), key),
  ]);
  const current = usageOf(read, scope, settings, now);
  if (read.exists) return { usage: current, entry: undefined };
  if (current.blocked) {
    throw new UserError('blocked', 'You are blocked from generating images in this server.', {});
  }
  if (current.used + job.cost > current.budget + 1e-9) {
    throw new UserError(
      'quota-exhausted',
      `This job costs ${job.cost} units and you have ${current.remaining} of ${current.budget} left today (resets ${current.resetsAt.toISOString()}).`,
      { cost: job.cost, remaining: current.remaining, budget: current.budget, resetsAt: current.resetsAt },
    );
  }
  const entry: NewLedgerRow = {
    guildId: scope.guildId,
    userId: scope.userId,
    jobId: job.jobId,
    kind: 'reserve',
    units: job.cost,
    quotaDay: quotaDay(now, settings.resetHourUtc),
    idempotencyKey: key,
  };
  const usage = {
    ...current,
    used: round2(current.used + job.cost),
    remaining: round2(Math.max(0, current.budget - current.used - job.cost)),
  };
  return { usage, entry };
}

/**
 * The statement that settles a reservation, unless settled already (a refund gives its units back
 * on the day they counted against), when `when` holds; returns the new row's id. `afterCommit`:
 * a refund that may follow a commit (a done job whose images never reached its member, drawn
 * again after a crash, that then failed: no images, no charge). Run it under the user's lock
 * (userLock). The ledger keys are the job id's (`<id>:reserve`, …), written here.
 */
export function settlement(
  who: Pick<Who, 'guildId' | 'userId'>,
  jobId: Value,
  outcome: 'commit' | 'refund',
  when: SQL,
  afterCommit = false,
): SQL {
  const keyOf = (kind: string) => sql`(${jobId}::text || ${sql.raw(`':${kind}'`)})`;
  // after a commit, an admin's reset of that day (a later row: ledger writes are serialised by
  // the user's lock) has given the job's units back already: the refund gives back nothing more
  const units = afterCommit
    ? sql`case when exists (
          select 1 from usage_ledger x join usage_ledger c on c.idempotency_key = ${keyOf('commit')}
          where x.kind = 'reset' and x.guild_id = r.guild_id and x.user_id = r.user_id
            and x.quota_day = r.quota_day and x.id > c.id
        ) then 0 else -r.units end`
    : sql`-r.units`;
  return sql`
    insert into usage_ledger (guild_id, user_id, job_id, kind, units, quota_day, idempotency_key)
    select r.guild_id, r.user_id, ${jobId}, ${outcome}::ledger_kind,
           ${outcome === 'refund' ? units : sql`0`}, r.quota_day, ${keyOf(outcome)}
    from usage_ledger r
    where ${when}
      and r.idempotency_key = ${keyOf('reserve')} and r.kind = 'reserve'
      and r.guild_id = ${who.guildId} and r.user_id = ${who.userId}
      and not exists (
        select 1 from usage_ledger s
        where s.idempotency_key in (${afterCommit ? keyOf('refund') : sql`${keyOf('commit')}, ${keyOf('refund')}`})
          and s.guild_id = ${who.guildId} and s.user_id = ${who.userId}
      )
    returning id`;
}

/** How a job's reservation was settled, if it was (a refund after a commit: refunded). */
export async function settlementOf(
  db: Db,
  scope: QuotaScope,
  jobId: string,
): Promise<'commit' | 'refund' | undefined> {
  const rows = await db
    .select({ kind: usageLedger.kind })
    .from(usageLedger)
    .where(
      and(
        eq(usageLedger.guildId, scope.guildId),
        eq(usageLedger.userId, scope.userId),
        inArray(usageLedger.idempotencyKey, [`${jobId}:commit`, `${jobId}:refund`]),
      ),
    );
  if (rows.some((r) => r.kind === 'refund')) return 'refund';
  return rows[0]?.kind as 'commit' | undefined;
}

/** Units reserved today for jobs not yet settled (queued or running): not the user's to reset. */
const inFlightOn = (db: Db, scope: QuotaScope, day: string) =>
  unitsOn(
    db,
    scope,
    day,
    and(
      eq(usageLedger.kind, 'reserve'),
      sql`not exists (select 1 from ${usageLedger} s where s.job_id = ${usageLedger.jobId} and s.kind in ('commit', 'refund'))`,
    ),
  );

/**
 * Admin: gives a user back today's settled usage. Reservations of jobs still in flight stay:
 * their refund (or commit) settles them later, so usage can never go below zero.
 */
export async function resetUsage(
  db: Db,
  scope: QuotaScope,
  settings: QuotaSettings,
  by: string,
  now = new Date(),
) {
  await inTransaction(db, async (tdb) => {
    await lockUser(tdb, scope);
    const day = quotaDay(now, settings.resetHourUtc);
    const settled = round2((await usedOn(tdb, scope, day)) - (await inFlightOn(tdb, scope, day)));
    if (settled <= 0) return;
    await tdb.insert(usageLedger).values({
      guildId: scope.guildId,
      userId: scope.userId,
      kind: 'reset',
      units: -settled,
      quotaDay: day,
      idempotencyKey: `reset:${scope.guildId}:${scope.userId}:${day}:${now.getTime()}:${by}`,
    });
  });
}

export { guildDailyUnits, type PolicyTarget, setBlocked, setDailyUnits } from './quota-admin.ts';
