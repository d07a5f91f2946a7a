// One suite, two databases: a fresh PGlite folder, or a fresh database on the machine's
// PostgreSQL (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test). A test that
// needs PostgreSQL and cannot reach it fails: it is never skipped.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type Database, openDatabase, rowsOf } from '../../src/db/client.ts';

export const DATABASE_KINDS = ['pglite', 'postgres'] as const;
export type DatabaseKind = (typeof DATABASE_KINDS)[number];

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase extends Database {
  /** How to open the same database again (another process, a restart). */
  location: { url: string } | { pgliteDir: string };
  destroy(): Promise<void>;
}

/** `max`: PostgreSQL's pool size (1: every statement on one connection; PGlite always has one). */
export async function freshDatabase(kind: DatabaseKind, o: { max?: number } = {}): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'hiresbot-pglite-'));
    const db = await openDatabase({ pgliteDir: dir });
    return {
      ...db,
      location: { pgliteDir: dir },
      async destroy() {
        await db.close().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `hiresbot_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.href, ...(o.max ? { max: o.max } : {}) });
  return {
    ...db,
    location: { url: url.href },
    async destroy() {
      await db.close().catch(() => {});
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/**
 * Ends every unfinished job (as cancelled): the queue is the jobs table, shared by every process
 * on the database, so a test that leaves jobs waiting would hand them to the next test's service.
 */
export async function emptyQueue(db: Database['db']): Promise<void> {
  await db.execute(sql`update jobs set status = 'cancelled' where status in ('queued', 'running')`);
}

/** Where the last checkpoint is (PGlite has no checkpointer: only the bot's upkeep moves it). */
export async function lastCheckpoint(db: Database['db']): Promise<string | undefined> {
  const [row] = rowsOf<{ lsn: string }>(
    await db.execute(sql`select checkpoint_lsn::text as lsn from pg_control_checkpoint()`),
  );
  return row?.lsn;
}

/** When `table` was last analyzed by a statement (not by autovacuum, which PGlite lacks). */
export async function lastAnalyzed(db: Database['db'], table: string): Promise<string | null> {
  const [row] = rowsOf<{ at: string | null }>(
    await db.execute(sql`select last_analyze::text as at from pg_stat_user_tables where relname = ${table}`),
  );
  return row?.at ?? null;
}
