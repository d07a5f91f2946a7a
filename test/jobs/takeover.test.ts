// Two bot processes on one database: a job one of them holds is cancelled or taken over by the
// other. The handle of the process that held it still ends, and a live process's jobs are never
// taken from it because another process's clock runs ahead.
import { eq, sql } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { jobs, usageLedger } from '../../src/db/schema.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, type DatabaseKind } from '../support/databases.ts';
import { jobProcesses } from '../support/job-processes.ts';
import { smallRequest } from '../support/job-service.ts';

/** A fresh database per file, a guild per test, and processes that are stopped after each test. */
function twoProcesses(kind: DatabaseKind) {
  const p = jobProcesses(kind, 'takeover');
  const { g } = p;
  return {
    db: p.db,
    /** A process: heartbeats far apart, so that only what the test does moves a job. */
    async start(name: string) {
      const m = p.make(name);
      await m.service.start();
      return m;
    },
    submit: (service: JobService, userId: string, prompt: string) =>
      service.submit({
        kind: 'imagine',
        guildId: g(),
        channelId: 'c',
        userId,
        request: smallRequest(prompt),
      }),
    async ledgerOf(jobId: string) {
      return (await p.db().select().from(usageLedger).where(eq(usageLedger.jobId, jobId)))
        .map((l) => l.kind)
        .sort();
    },
  };
}

describe.each(DATABASE_KINDS)('two processes on %s', (kind) => {
  const two = twoProcesses(kind);

  it('a job queued here and cancelled through another process ends its handle here as cancelled', async () => {
    const a = await two.start('a');
    const b = await two.start('b');
    await two.submit(a.service, 'u1', 'running');
    const waiting = await two.submit(a.service, 'u2', 'waiting');
    const running = await a.engine.nextCall();
    await b.service.cancel(waiting.jobId, { userId: 'u2', isAdmin: false });
    running.finish(); // a's engine is free: the cancelled job is next in its queue
    expect(await waiting.result).toMatchObject({ type: 'cancelled', refunded: true });
    expect(a.engine.calls).toHaveLength(1); // the cancelled job never ran
    expect(await two.ledgerOf(waiting.jobId)).toEqual(['refund', 'reserve']);
  });

  it('a job another process took over (this one looked dead) ends its handle here as interrupted', async () => {
    const a = await two.start('a');
    const h = await two.submit(a.service, 'u1', 'taken');
    const first = await a.engine.nextCall();
    // a's heartbeats stopped reaching the database (a partition): its row looks stale
    await two
      .db()
      .update(jobs)
      .set({ heartbeatAt: sql`now() - interval '1 hour'` })
      .where(eq(jobs.id, h.jobId));
    const b = await two.start('b'); // recovers at start
    const second = await b.engine.nextCall();
    first.finish(); // a's run ends after all: its result no longer counts
    expect(await h.result).toEqual({ type: 'interrupted', jobId: h.jobId });
    second.finish();
    expect(await b.service.watch(h.jobId)?.result).toMatchObject({ type: 'done' });
    expect(await two.ledgerOf(h.jobId)).toEqual(['commit', 'reserve']);
  });
});

// PGlite lives inside one process, and its clock is that process's: skew between bot hosts needs
// PostgreSQL.
describe('two processes on postgres, one clock ahead', () => {
  const two = twoProcesses('postgres');

  it('a process whose clock runs ahead does not take over the jobs of a live one', async () => {
    const a = await two.start('a');
    const h = await two.submit(a.service, 'u1', 'live');
    const call = await a.engine.nextCall();
    const b = await two.start('b');
    // b's host clock is two minutes ahead: a's fresh heartbeat looks older than staleMs to it
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 120_000);
    await b.service.recover();
    vi.useRealTimers();
    const [row] = await two.db().select().from(jobs).where(eq(jobs.id, h.jobId));
    expect(row).toMatchObject({ status: 'running', owner: a.service.instanceId });
    call.finish();
    expect(await h.result).toMatchObject({ type: 'done' });
    expect(b.engine.calls).toHaveLength(0);
  });
});
