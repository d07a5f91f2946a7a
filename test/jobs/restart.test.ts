// A bot process killed with SIGKILL in the middle of a job; a new process on the same database
// takes over. Every job must end done, or failed/cancelled with a refund, and the ledger balance.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { jobs, usageLedger } from '../../src/db/schema.ts';
import { Engine } from '../../src/engine/engine.ts';
import type { JobEvent } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService } from '../support/job-service.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-restart-'));
const modelDir = path.join(work, 'slow-sd');

beforeAll(() => {
  writeTinyModel(modelDir, { layout: 'diffusers', unetWork: 1024 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const JOBS = [
  { userId: 'u1', prompt: 'one', expiresInMs: 900_000 },
  { userId: 'u2', prompt: 'two', expiresInMs: 900_000 },
  { userId: 'u3', prompt: 'three', expiresInMs: 900_000 },
  { userId: 'u1', prompt: 'four', expiresInMs: 900_000 },
  // their interactions expire at once: the result is then posted to the channel instead
  { userId: 'u2', prompt: 'five-old', expiresInMs: 1_000 },
  { userId: 'u3', prompt: 'six-old', expiresInMs: 1_000 },
];

/** Runs the child until the second job has started, then kills it with SIGKILL. */
function runAndKill(location: TestDatabase['location']): Promise<{ submitted: number; lines: string[] }> {
  // node itself with tsx's loader: the tsx binary would put a second process between us and
  // the one to kill
  const tsxLoader = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      tsxLoader,
      path.join(root, 'test', 'support', 'job-child.ts'),
      JSON.stringify({ location, modelDir, jobs: JOBS }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let buffer = '';
    let started = 0;
    let submitted = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child never got going: ${lines.join(' | ')}`));
    }, 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        const { event } = JSON.parse(line) as { event: string };
        if (event === 'submitted') submitted++;
        if (event === 'started') started++;
        if (started === 2 && submitted === JOBS.length) {
          child.kill('SIGKILL');
        }
      }
    });
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve({ submitted, lines });
      else reject(new Error(`child exited on its own: ${lines.join(' | ')}`));
    });
  });
}

describe.each(DATABASE_KINDS)('restart recovery on %s', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(kind);
    await t.close(); // the child opens it; PGlite allows one process at a time
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('after SIGKILL mid-job, every job ends done or refunded and the ledger balances', async () => {
    const { submitted, lines } = await runAndKill(t.location);
    expect(submitted).toBe(JOBS.length);
    expect(lines.some((l) => l.includes('"started"'))).toBe(true);
    await new Promise((r) => setTimeout(r, 1_200)); // the child's heartbeat goes stale; two tokens expire

    const database = await openDatabase('url' in t.location ? { url: t.location.url } : t.location);
    // two jobs were asked for two hours ago (the bot was down that long): too old to run now
    await database.db
      .update(jobs)
      .set({ createdAt: new Date(Date.now() - 2 * 3_600_000) })
      .where(inArray(sql`${jobs.request}->>'prompt'`, ['five-old', 'six-old']));
    const engine = await Engine.start({
      modelDir,
      executionProviders: ['cpu'],
      previewEvery: 0,
      timestepRounding: 'fp16',
    });
    const { service, limiters } = createTestJobService(database.db, engine, { staleMs: 500 });
    const events: JobEvent[] = [];
    service.on((e) => events.push(e));
    try {
      await service.start();
      const finished = async () => {
        const rows = await database.db.select().from(jobs);
        return rows.length === JOBS.length && rows.every((r) => !['queued', 'running'].includes(r.status));
      };
      for (let i = 0; i < 600 && !(await finished()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await finished()).toBe(true);

      const rows = await database.db.select().from(jobs);
      const ledger = await database.db.select().from(usageLedger);
      const byPrompt = Object.fromEntries(rows.map((r) => [r.request.prompt, r]));
      // killed while "two" ran: "one" was done by the first process; "two" (interrupted) went
      // back to the queue, and the second process ran it, "three" and "four"; the two old jobs
      // waited past the re-queue window (one hour), so they failed and were refunded
      expect(byPrompt.one?.status).toBe('done');
      for (const p of ['two', 'three', 'four']) {
        expect(byPrompt[p]).toMatchObject({ status: 'done', owner: service.instanceId });
      }
      expect((byPrompt.two?.attempts ?? 0) >= 2).toBe(true);
      for (const p of ['five-old', 'six-old']) {
        expect(byPrompt[p]).toMatchObject({ status: 'failed' });
        expect(byPrompt[p]?.error).toMatch(/^waited more than 60 minutes in the queue/);
      }
      expect(
        events
          .filter((e) => e.type === 'requeued')
          .map((e) => (e as { job: { request: { prompt: string } } }).job.request.prompt)
          .sort(),
      ).toEqual(['four', 'three', 'two']);
      for (const row of rows) {
        const own = ledger.filter((l) => l.jobId === row.id);
        expect(own.filter((l) => l.kind === 'reserve')).toHaveLength(1);
        const settlement = own.filter((l) => l.kind !== 'reserve');
        expect(settlement.map((l) => l.kind)).toEqual([row.status === 'done' ? 'commit' : 'refund']);
        expect(['done', 'failed']).toContain(row.status);
      }
      for (const user of ['u1', 'u2', 'u3']) {
        const charged = ledger.filter((l) => l.userId === user).reduce((s, l) => s + l.units, 0);
        const doneCost = rows
          .filter((r) => r.userId === user && r.status === 'done')
          .reduce((s, r) => s + r.cost, 0);
        expect(charged).toBeCloseTo(doneCost, 9);
      }
    } finally {
      await service.stop();
      await limiters.close();
      await engine.close();
      await database.close();
    }
  });
});
