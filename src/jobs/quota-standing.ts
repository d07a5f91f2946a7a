/**
 * Where a user stands against their daily quota: the budget that applies to them (their own
 * override, their most generous role's, the server's, the default) and the units used today,
 * read in one statement from the ledger and the policies.
 */
import { type Placeholder, type SQL, sql } from 'drizzle-orm';
import { anyOf, type Db } from '../db/client.ts';
import { compiled, type Value } from '../db/compiled.ts';
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
export const round2 = (n: number) => Math.round(n * 100) / 100;

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
export async function standing(
  db: Db,
  scope: QuotaScope,
  day: string,
  key: string | null,
): Promise<{ policies: PolicyRow[]; used: number; exists: boolean }> {
  return standingFrom(await standingStatement(db, { ...whoOf(scope), day, key }));
}

const standingStatement = compiled<
  { guildId: string; userId: string; targets: string[]; day: string; key: string | null },
  StandingRow
>((slot) => standingSql(slot, slot.day, slot.key));

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

export async function usage(
  db: Db,
  scope: QuotaScope,
  settings: QuotaSettings,
  now = new Date(),
): Promise<Usage> {
  const read = await standing(db, scope, quotaDay(now, settings.resetHourUtc), null);
  return usageOf(read, scope, settings, now);
}

export function usageOf(
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
