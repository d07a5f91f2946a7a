// A server's stored /settings: one row per server in `guild_settings`, read and changed as plain
// data. Scoped by guild id: nothing here reads or writes another server's row.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { type GuildSettingsRow, guildSettings } from '../db/schema.ts';
import type { GuildSettingsChange } from './services.ts';
import { EMPTY_GUILD_SETTINGS, type RequestDefaults, type StoredGuildSettings } from './settings.ts';

function fromRow(row: GuildSettingsRow | undefined): StoredGuildSettings {
  if (!row) return EMPTY_GUILD_SETTINGS;
  const limits: StoredGuildSettings['limits'] = {};
  if (row.maxSteps !== null) limits.steps = row.maxSteps;
  if (row.maxBaseSide !== null) limits.baseSide = row.maxBaseSide;
  if (row.maxHiresSide !== null) limits.hiresSide = row.maxHiresSide;
  return { defaults: row.defaults as RequestDefaults, limits, blockedWords: row.blockedWords };
}

export async function loadGuildSettings(db: Db, guildId: string): Promise<StoredGuildSettings> {
  const [row] = await db.select().from(guildSettings).where(eq(guildSettings.guildId, guildId));
  return fromRow(row);
}

/** Applies a change (null clears a value back to the bot's) and returns the stored result. */
export async function updateGuildSettings(
  db: Db,
  guildId: string,
  change: GuildSettingsChange,
  by: string,
): Promise<StoredGuildSettings> {
  return db.transaction(async (tx) => {
    // the row lock serialises two admins changing the same server at once
    const [row] = await tx
      .select()
      .from(guildSettings)
      .where(eq(guildSettings.guildId, guildId))
      .for('update');
    const current = fromRow(row);
    const defaults: Record<string, unknown> = { ...current.defaults };
    for (const [k, v] of Object.entries(change.defaults ?? {})) {
      if (v === null) delete defaults[k];
      else if (v !== undefined) defaults[k] = v;
    }
    const limits = { ...current.limits };
    for (const [k, v] of Object.entries(change.limits ?? {}) as [keyof typeof limits, number | null][]) {
      if (v === null) delete limits[k];
      else if (v !== undefined) limits[k] = v;
    }
    const removed = new Set((change.removeBlockedWords ?? []).map((w) => w.toLowerCase()));
    const blockedWords = [...new Set([...current.blockedWords, ...(change.addBlockedWords ?? [])])].filter(
      (w) => !removed.has(w.toLowerCase()),
    );
    const values = {
      guildId,
      defaults: defaults as RequestDefaults,
      maxSteps: limits.steps ?? null,
      maxBaseSide: limits.baseSide ?? null,
      maxHiresSide: limits.hiresSide ?? null,
      blockedWords,
      updatedBy: by,
      updatedAt: new Date(),
    };
    const [saved] = await tx
      .insert(guildSettings)
      .values(values)
      .onConflictDoUpdate({ target: guildSettings.guildId, set: values })
      .returning();
    return fromRow(saved);
  });
}
