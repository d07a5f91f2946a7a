/**
 * Daily quotas over the append-only usage ledger. Every function takes (db, scope): a user in a
 * guild; nothing here reads or writes another user's rows. Reservations are serialised per user
 * with a transaction-scoped advisory lock, so N concurrent requests against a budget that fits k
 * accept exactly k, on PGlite and on PostgreSQL alike.
 */
import { and, eq, inArray, type Placeholder, type SQL, sql } from 'drizzle-orm';
import { anyOf, type Db, inTransaction, rowsOf } from '../db/client.ts';
import type { Value } from '../db/compiled.ts';
import { type NewLedgerRow, usageLedger } from '../db/schema.ts';
import { UserError } from '../user-error.ts';
import { nextReset, quotaDay } from './quota-day.ts';

export interface QuotaScope {
  guildId: string;
  userId: string;
  /** The member's roles, for role overrides. */
  roleIds?: readonly string[];
}

export interface QuotaSettings {
  /** Default daily units per user per guild; 0 = unlimited. */
  dailyUnits: number;
  resetHourUtc: number;
}

export interface Usage {
  used: number;
  /** Daily budget; Infinity when unlimited. */
  budget: number;
  remaining: number;
  blocked: boolean;
  resetsAt: Date;
}

const toBudget = (units: number) => (units === 0 ? Number.POSITIVE_INFINITY : units);
const round2 = (n: number) => Math.round(n * 100) / 100;

/** The key of a user's lock (userLock). */
export const lockKeyOf = (scope: QuotaScope): string => `quota:${scope.guildId}:${scope.userId}`;

/** The per-user lock that serialises a user's ledger writes, to the end of the transaction. */
export function userLock(key: Value): SQL {
  return sql`pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
}

async function lockUser(db: Db, scope: QuotaScope): Promise<void> {
  await db.execute(sql`select ${userLock(lockKeyOf(scope))}`);
}

interface PolicyRow {
  scope: 'guild' | 'role' | 'user';
  targetId: string;
  dailyUnits: number | null;
  blocked: boolean;
}

/** The budget that applies: user override, else the most generous role, else guild, else default. */
function effectivePolicy(
  rows: readonly PolicyRow[],
  scope: QuotaScope,
  settings: QuotaSettings,
): { budget: number; blocked: boolean } {
  const user = rows.find((r) => r.scope === 'user' && r.targetId === scope.userId);
  const roles = rows.filter(
    (r) => r.scope === 'role' && scope.roleIds?.includes(r.targetId) && r.dailyUnits !== null,
  );
  const guild = rows.find((r) => r.scope === 'guild' && r.targetId === scope.guildId);
  let budget: number;
  if (user?.dailyUnits != null) budget = toBudget(user.dailyUnits);
  else if (roles.length > 0) budget = Math.max(...roles.map((r) => toBudget(r.dailyUnits as number)));
  else if (guild?.dailyUnits != null) budget = toBudget(guild.dailyUnits);
  else budget = toBudget(settings.dailyUnits);
  return { budget, blocked: user?.blocked ?? false };
}

/**
 * A user's policies, the units used on `day` and whether the ledger holds `key`: one statement
 * (one round trip, one snapshot), as every reservation and every finished job reads them.
 */
async function standing(
  db: Db,
  scope: QuotaScope,
  day: string,
  key: string | null,
): Promise<{ policies: PolicyRow[]; used: number; exists: boolean }> {
  return standingFrom(rowsOf<StandingRow>(await db.execute(standingSql(whoOf(scope), day, key))));
}

/** standing's rows: at least one; its policies, one a row (none: nulls). */
export interface StandingRow {
  used: number | string;
  exists: boolean;
  scope: PolicyRow['scope'] | null;
  target_id: string | null;
  daily_units: number | null;
  blocked: boolean | null;
}

/** Whose standing standingSql reads: a user in a guild, and the targets of their policies. */
export interface Who {
  guildId: Value;
  userId: Value;
  /** The guild, the user and the user's roles (whoOf). */
  targets: readonly string[] | Placeholder;
}

export const whoOf = (scope: QuotaScope): { guildId: string; userId: string; targets: string[] } => ({
  guildId: scope.guildId,
  userId: scope.userId,
  targets: [scope.guildId, scope.userId, ...(scope.roleIds ?? [])],
});

/** standing's statement, for a bigger one (a settle) to read with its own. */
export function standingSql(who: Who, day: Value, key: Value | null): SQL {
  return sql`
    select u.used, u.exists, p.scope, p.target_id, p.daily_units, p.blocked
    from (
      select
        (select coalesce(sum(units), 0) from usage_ledger
         where guild_id = ${who.guildId} and user_id = ${who.userId} and quota_day = ${day}) as used,
        exists (select 1 from usage_ledger where idempotency_key = ${key}) as exists
    ) u
    left join quota_policies p
      on p.guild_id = ${who.guildId} and ${anyOf(sql`p.target_id`, who.targets)}`;
}

function standingFrom(rows: StandingRow[]): { policies: PolicyRow[]; used: number; exists: boolean } {
  const policies: PolicyRow[] = [];
  for (const r of rows) {
    if (r.scope === null || r.target_id === null) continue;
    policies.push({
      scope: r.scope,
      targetId: r.target_id,
      dailyUnits: r.daily_units === null ? null : Number(r.daily_units),
      blocked: r.blocked ?? false,
    });
  }
  return { policies, used: round2(Number(rows[0]?.used ?? 0)), exists: rows[0]?.exists === true };
}

/** A user's usage from standing's rows (read as part of another statement). */
export function usageFrom(rows: StandingRow[], scope: QuotaScope, settings: QuotaSettings, now: Date): Usage {
  return usageOf(standingFrom(rows), scope, settings, now);
}

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

export async function usage(
  db: Db,
  scope: QuotaScope,
  settings: QuotaSettings,
  now = new Date(),
): Promise<Usage> {
  const read = await standing(db, scope, quotaDay(now, settings.resetHourUtc), null);
  return usageOf(read, scope, settings, now);
}

function usageOf(
  read: { policies: PolicyRow[]; used: number },
  scope: QuotaScope,
  settings: QuotaSettings,
  now: Date,
): Usage {
  const { budget, blocked } = effectivePolicy(read.policies, scope, settings);
  return {
    used: read.used,
    budget,
    remaining: round2(Math.max(0, budget - read.used)),
    blocked,
    resetsAt: nextReset(now, settings.resetHourUtc),
  };
}

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
 * on the day they counted against), when `when` holds; returns the new row's id. Run it under the
 * user's lock (userLock). The ledger keys are the job id's (`<id>:reserve`, …), written here.
 */
export function settlement(
  who: Pick<Who, 'guildId' | 'userId'>,
  jobId: Value,
  outcome: 'commit' | 'refund',
  when: SQL,
): SQL {
  const keyOf = (kind: string) => sql`(${jobId}::text || ${sql.raw(`':${kind}'`)})`;
  return sql`
    insert into usage_ledger (guild_id, user_id, job_id, kind, units, quota_day, idempotency_key)
    select r.guild_id, r.user_id, ${jobId}, ${outcome}::ledger_kind,
           ${outcome === 'refund' ? sql`-r.units` : sql`0`}, r.quota_day, ${keyOf(outcome)}
    from usage_ledger r
    where ${when}
      and r.idempotency_key = ${keyOf('reserve')} and r.kind = 'reserve'
      and r.guild_id = ${who.guildId} and r.user_id = ${who.userId}
      and not exists (
        select 1 from usage_ledger s
        where s.idempotency_key in (${keyOf('commit')}, ${keyOf('refund')})
          and s.guild_id = ${who.guildId} and s.user_id = ${who.userId}
      )
    returning id`;
}

/** How a job's reservation was settled, if it was. */
export async function settlementOf(
  db: Db,
  scope: QuotaScope,
  jobId: string,
): Promise<'commit' | 'refund' | undefined> {
  const [row] = await db
    .select({ kind: usageLedger.kind })
    .from(usageLedger)
    .where(
      and(
        eq(usageLedger.guildId, scope.guildId),
        eq(usageLedger.userId, scope.userId),
        inArray(usageLedger.idempotencyKey, [`${jobId}:commit`, `${jobId}:refund`]),
      ),
    );
  return row?.kind as 'commit' | 'refund' | undefined;
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

// the admin's writes (a server's budget, a role's or a user's, a block) live in quota-admin.ts
export { guildDailyUnits, type PolicyTarget, setBlocked, setDailyUnits } from './quota-admin.ts';

/** Usage could not be read after a done job (a blink): the event still goes out. */
export function unknownUsage(): Usage {
  return {
    used: Number.NaN,
    budget: Number.NaN,
    remaining: Number.NaN,
    blocked: false,
    resetsAt: new Date(Number.NaN),
  };
}
