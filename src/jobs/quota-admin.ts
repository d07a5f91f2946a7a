/**
 * Quota policies as an admin sets them: a server's default daily budget, a role's or a user's,
 * and blocks. Read back by quota.ts for every reservation.
 */
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { quotaPolicies } from '../db/schema.ts';
import { UserError } from '../user-error.ts';
import type { QuotaSettings } from './quota-standing.ts';

/** A server's default daily budget per member, and whether the server set it (else the bot's). */
export async function guildDailyUnits(
  db: Db,
  guildId: string,
  settings: QuotaSettings,
): Promise<{ dailyUnits: number; setHere: boolean }> {
  const [row] = await db
    .select({ dailyUnits: quotaPolicies.dailyUnits })
    .from(quotaPolicies)
    .where(
      and(
        eq(quotaPolicies.guildId, guildId),
        eq(quotaPolicies.scope, 'guild'),
        eq(quotaPolicies.targetId, guildId),
      ),
    );
  const setHere = row?.dailyUnits !== null && row?.dailyUnits !== undefined;
  return { dailyUnits: setHere ? (row?.dailyUnits as number) : settings.dailyUnits, setHere };
}

export type PolicyTarget =
  | { scope: 'guild' }
  | { scope: 'role'; roleId: string }
  | { scope: 'user'; userId: string };

/** Admin: sets (or with null clears) a daily budget for the guild, a role or a user. */
export async function setDailyUnits(
  db: Db,
  guildId: string,
  target: PolicyTarget,
  dailyUnits: number | null,
  by: string,
) {
  const targetId =
    target.scope === 'guild' ? guildId : target.scope === 'role' ? target.roleId : target.userId;
  if (dailyUnits !== null && !(dailyUnits >= 0 && Number.isFinite(dailyUnits))) {
    throw new UserError('bad-option', `units must be 0 (unlimited) or more (got ${dailyUnits})`, {
      option: 'units',
    });
  }
  await db
    .insert(quotaPolicies)
    .values({ guildId, scope: target.scope, targetId, dailyUnits, updatedBy: by })
    .onConflictDoUpdate({
      target: [quotaPolicies.guildId, quotaPolicies.scope, quotaPolicies.targetId],
      set: { dailyUnits, updatedBy: by, updatedAt: new Date() },
    });
}

/** Admin: blocks or unblocks one user in a guild. */
export async function setBlocked(db: Db, guildId: string, userId: string, blocked: boolean, by: string) {
  await db
    .insert(quotaPolicies)
    .values({ guildId, scope: 'user', targetId: userId, blocked, updatedBy: by })
    .onConflictDoUpdate({
      target: [quotaPolicies.guildId, quotaPolicies.scope, quotaPolicies.targetId],
      set: { blocked, updatedBy: by, updatedAt: new Date() },
    });
}
