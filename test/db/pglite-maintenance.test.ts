// PGlite runs no autovacuum and no checkpointer: without the sweep's VACUUM the space of deleted
// latents (64 KB each at 512×512) was never reused, so the database grew by every latent ever
// made whatever the retention; without its CHECKPOINT the write-ahead log grew towards 1 GB
// (max_wal_size) before any of it was recycled.
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/client.ts';
import { deleteLatentsBefore } from '../../src/jobs/job-store.ts';
import { freshDatabase, lastAnalyzed, lastCheckpoint, type TestDatabase } from '../support/databases.ts';
import { insertJob, jobRow, saveLatent } from '../support/job-rows.ts';

const BATCH = 150;

describe('PGlite maintenance', () => {
  let database: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    database = await freshDatabase('pglite');
    dir = (database.location as { pgliteDir: string }).pgliteDir;
  });
  afterAll(() => database?.destroy());

  /** BATCH finished jobs, each with a 512×512 job's base latent (random: no compression). */
  const addBatch = async (prefix: string, count = BATCH) => {
    for (let i = 0; i < count; i++) {
      const id = `${prefix}-${i}`;
      await insertJob(database.db, jobRow(id, { seed: i, status: 'done', owner: 'test' }));
      const bytes = randomBytes(4 * 4 * 64 * 64);
      await saveLatent(database.db, id, {
        data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4),
        shape: [4, 64, 64],
      });
    }
  };
  const latentBytes = async () =>
    Number(
      rowsOf<{ size: string }>(
        await database.db.execute(sql`select pg_total_relation_size('job_latents') as size`),
      )[0]?.size,
    );

  it('reuses the space of deleted latents', async () => {
    if (!database.maintenance) throw new Error('PGlite has no maintenance');
    await addBatch('first');
    const one = await latentBytes();
    expect(one).toBeGreaterThan(BATCH * 64 * 1024);
    expect(await deleteLatentsBefore(database.db, new Date(Date.now() + 60_000))).toBe(BATCH);
    // 150 dead latents (more than 50 + a fifth of none live); 150 new jobs (more than 50 + a tenth)
    const done = await database.maintenance();
    expect(done.vacuumed).toContain('job_latents');
    expect([...done.vacuumed, ...done.analyzed]).toContain('jobs');
    await addBatch('second');
    const two = await latentBytes();
    // without the vacuum: about twice `one`
    expect(two).toBeLessThan(one * 1.15);
    expect(await lastAnalyzed(database.db, 'jobs')).not.toBeNull();
  });

  it('leaves tables alone below autovacuum’s thresholds, and checkpoints anyway', async () => {
    if (!database.maintenance) throw new Error('PGlite has no maintenance');
    await database.maintenance();
    const before = await lastCheckpoint(database.db);
    // 40 of 300 job rows changed: fewer than 50 + a fifth (dead) or 50 + a tenth (changed)
    await database.db.execute(sql`update jobs set cost = 2 where id in (select id from jobs limit 40)`);
    const done = await database.maintenance();
    expect(done).toMatchObject({ vacuumed: [], analyzed: [] });
    expect(await lastCheckpoint(database.db)).not.toBe(before);
  });

  it('recycles the write-ahead log', async () => {
    if (!database.maintenance) throw new Error('PGlite has no maintenance');
    const walBytes = () =>
      readdirSync(path.join(dir, 'pg_wal'))
        .filter((f) => /^[0-9A-F]{24}$/.test(f))
        .reduce((n, f) => n + statSync(path.join(dir, 'pg_wal', f)).size, 0);
    // 1200 latents: about 80 MB of log, the most PostgreSQL keeps after a checkpoint (min_wal_size)
    await addBatch('third', 1200);
    await database.maintenance();
    const kept = walBytes();
    await addBatch('fourth', 1200);
    await database.maintenance();
    // without the checkpoints: the second batch's log beside the first (about 170 MB)
    expect(walBytes()).toBeLessThan(kept + 32 * 2 ** 20);
  }, 120_000);

  it('keeps the other tables up, and checkpoints, when one table cannot be vacuumed', async () => {
    // its own database: the log test above counts on this one's checkpoints alone
    const own = await freshDatabase('pglite');
    try {
      if (!own.maintenance) throw new Error('PGlite has no maintenance');
      // a table whose VACUUM fails (as a damaged index's would): its index calls a function that
      // refuses to run under ANALYZE; named to come first, before every table of ours
      await own.db.execute(
        sql.raw(`create function picky(x int) returns int immutable language plpgsql as $$
          begin if current_query() ilike '%analyze%' then raise exception 'picky refuses'; end if;
          return x; end $$`),
      );
      await own.db.execute(sql.raw('create table aaa (x int)'));
      await own.db.execute(sql.raw('create index on aaa (picky(x))'));
      // (rows for ANALYZE to sample: an empty table's index is never computed)
      await own.db.execute(sql.raw('insert into aaa select generate_series(1, 100)'));
      const before = await lastCheckpoint(own.db);
      const done = await own.maintenance({ all: true });
      expect(done.failed).toEqual([{ table: 'aaa', error: 'picky refuses' }]);
      expect(done.vacuumed).toEqual(expect.arrayContaining(['jobs', 'job_latents', 'usage_ledger']));
      expect(await lastCheckpoint(own.db)).not.toBe(before);
    } finally {
      await own.destroy();
    }
  });
});
