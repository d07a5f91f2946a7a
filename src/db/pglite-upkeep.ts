/**
 * PGlite's upkeep: what PostgreSQL's background workers do by themselves and PGlite (one
 * process, none of them) never does. Without VACUUM the space of deleted rows (old latents,
 * 64–150 KB each) was never reused; without ANALYZE the planner had no statistics (the queue's
 * claim read every finished job); without CHECKPOINT the write-ahead log grew towards
 * max_wal_size (1 GB) before any of it was recycled.
 *
 * PGlite runs each statement on the main thread, so the process stands still while one runs (a
 * VACUUM of 50 000 rewritten job rows: about 1.5 s). So a table is vacuumed or analyzed only when
 * autovacuum would (its default thresholds below), one table per statement, and the event loop
 * runs between statements. PGlite forgets those counts when it closes, so what an earlier run
 * left is unknown: `all` (at start) vacuums and analyzes every table.
 */
import type { PGlite } from '@electric-sql/pglite';

/** autovacuum_vacuum_threshold, _scale_factor, _insert_*, autovacuum_analyze_*, the freeze age. */
const VACUUM_BASE = 50;
const VACUUM_SCALE = 0.2;
/** Tables that only grow (the usage ledger) are vacuumed too: their visibility map stays current. */
const INSERT_BASE = 1000;
const INSERT_SCALE = 0.2;
const ANALYZE_BASE = 50;
const ANALYZE_SCALE = 0.1;
/** Below autovacuum_freeze_max_age (200 million): frozen before PostgreSQL would insist. */
const FREEZE_AGE = 150_000_000;

export interface Upkeep {
  /** Tables vacuumed (and analyzed), and those only analyzed. */
  vacuumed: string[];
  analyzed: string[];
  /** Tables whose statement failed, with why: the others are still kept up, and the checkpoint made. */
  failed: { table: string; error: string }[];
  ms: number;
}

interface TableStats {
  name: string;
  live: number;
  dead: number;
  inserted: number;
  changed: number;
  age: number;
}

export async function upkeep(pg: PGlite, o: { all?: boolean } = {}): Promise<Upkeep> {
  const t0 = performance.now();
  // the counts are flushed to where they are read at most once a second: now, before reading them
  await pg.exec('select pg_stat_force_next_flush()');
  const { rows } = await pg.query<TableStats>(`
    select s.relname as name, s.n_live_tup::float8 as live, s.n_dead_tup::float8 as dead,
           s.n_ins_since_vacuum::float8 as inserted, s.n_mod_since_analyze::float8 as changed,
           age(c.relfrozenxid)::float8 as age
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid
    where s.schemaname = 'public'
    order by s.relname`);
  const vacuumed: string[] = [];
  const analyzed: string[] = [];
  const failed: Upkeep['failed'] = [];
  for (const t of rows) {
    const vacuum =
      o.all ||
      t.dead > VACUUM_BASE + VACUUM_SCALE * t.live ||
      t.inserted > INSERT_BASE + INSERT_SCALE * t.live ||
      t.age > FREEZE_AGE;
    const analyze = t.changed > ANALYZE_BASE + ANALYZE_SCALE * t.live;
    if (!vacuum && !analyze) continue;
    await breathe();
    const table = `"${t.name.replace(/"/g, '""')}"`;
    try {
      // VACUUM refuses to run inside the block a multi-statement query is: one per call
      await pg.exec(vacuum ? `VACUUM (ANALYZE) ${table}` : `ANALYZE ${table}`);
      (vacuum ? vacuumed : analyzed).push(t.name);
    } catch (err) {
      // (a damaged index, say): one table must not stop the rest, nor the checkpoint, for good
      failed.push({ table: t.name, error: (err as Error).message });
    }
  }
  await breathe();
  await pg.exec('CHECKPOINT');
  return { vacuumed, analyzed, failed, ms: performance.now() - t0 };
}

/** Lets timers and I/O run (a Discord interaction has 3 s to be answered). */
function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
