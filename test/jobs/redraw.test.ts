// A job that ended 'done' (charged) whose process died before its images reached the member:
// recovery draws it again, once, whichever of several processes recovers it, without a second
// charge; a done job delivered, still being delivered by a live process, or finished long ago is
// left alone; a redraw that fails is refunded.
import { and, eq, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { jobs, usageLedger } from '../../src/db/schema.ts';
import { createBackend } from '../../src/discord/backend.ts';
import type { FrontEndServices, RecoveredJob } from '../../src/discord/services.ts';
import { recordDelivery } from '../../src/jobs/job-store.ts';
import { resetUsage } from '../../src/jobs/quota.ts';
import type { JobEvent, JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, type DatabaseKind } from '../support/databases.ts';
import { jobProcesses } from '../support/job-processes.ts';
import { smallRequest, until } from '../support/job-service.ts';

function processes(kind: DatabaseKind) {
  const p = jobProcesses(kind, 'redraw');
  const { g } = p;
  const db = p.db;
  return {
    db,
    g,
    async start(
      name: string,
      o: { heartbeatMs?: number; staleMs?: number; beforeStart?: (s: JobService) => void } = {},
    ) {
      const m = p.make(name, {
        ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
        ...(o.staleMs !== undefined ? { staleMs: o.staleMs } : {}),
        // as the bot's services run it: a front end records every delivery
        redrawUndelivered: true,
      });
      const events: JobEvent[] = [];
      m.service.on((e) => events.push(e));
      o.beforeStart?.(m.service);
      await m.service.start();
      return { ...m, events, stop: () => m.service.stop() };
    },
    submit: (service: JobService, prompt: string) =>
      service.submit({
        kind: 'imagine',
        guildId: g(),
        channelId: 'c',
        userId: 'u1',
        request: smallRequest(prompt),
        interaction: { token: 'tok', expiresAt: new Date(Date.now() + 600_000) },
      }),
    /** The job's ledger rows, sorted, each with its units in the job's cost (1: charged it). */
    async ledgerOf(jobId: string) {
      const [job] = await db().select().from(jobs).where(eq(jobs.id, jobId));
      return (await db().select().from(usageLedger).where(eq(usageLedger.jobId, jobId)))
        .map((l) => [l.kind, l.units / (job?.cost ?? Number.NaN)] as const)
        .sort();
    },
    /** The owner's heartbeat as a dead process leaves it: `ago` in the past, as is its end. */
    async silence(jobId: string, ago = "interval '1 minute'") {
      await db()
        .update(jobs)
        .set({ heartbeatAt: sql.raw(`now() - ${ago}`), finishedAt: sql.raw(`now() - ${ago}`) })
        .where(eq(jobs.id, jobId));
    },
    async row(jobId: string) {
      const [row] = await db().select().from(jobs).where(eq(jobs.id, jobId));
      return row;
    },
  };
}

describe.each(DATABASE_KINDS)('done jobs never delivered, on %s', (kind) => {
  const p = processes(kind);

  /** A job drawn and done by a process that then dies (stops holding it) before delivering it. */
  async function doneThenDead(prompt: string, o: { silenced?: boolean } = {}) {
    const a = await p.start('a');
    const h = await p.submit(a.service, prompt);
    (await a.engine.nextCall()).finish();
    expect((await h.result).type).toBe('done');
    await a.stop();
    if (o.silenced !== false) await p.silence(h.jobId);
    return h.jobId;
  }

  it('two processes recovering at once: one draws it again, once, charged once, token kept', async () => {
    const jobId = await doneThenDead('lost in delivery', { silenced: false });
    expect(await p.ledgerOf(jobId)).toEqual([
      ['commit', 0],
      ['reserve', 1],
    ]);
    const b = await p.start('b');
    const c = await p.start('c');
    // their start-up passes are over (the owner looked alive then); now it is silent, and both
    // recover at the same moment
    await p.silence(jobId);
    await Promise.all([b.service.recover(), c.service.recover()]);
    const engines = [b.engine, c.engine];
    await until(() => engines.some((e) => e.calls.length > 0));
    const call = engines.flatMap((e) => e.calls)[0];
    expect(call?.prompt).toBe('lost in delivery');
    call?.finish();
    await until(() => [...b.events, ...c.events].some((e) => e.type === 'done' && e.jobId === jobId));
    const ofJob = [...b.events, ...c.events].filter((e) => e.jobId === jobId).map((e) => e.type);
    // taken from the queue by one process, which follows it to the end as a recovered job
    expect(ofJob.filter((t) => t === 'requeued')).toHaveLength(1);
    expect(ofJob.filter((t) => t === 'done')).toHaveLength(1);
    const row = await p.row(jobId);
    expect(row?.status).toBe('done');
    // still to deliver: its token is there for the reply edit
    expect(row?.interactionToken).toBe('tok');
    expect(row?.attempts).toBe(2);
    // no second charge
    expect(await p.ledgerOf(jobId)).toEqual([
      ['commit', 0],
      ['reserve', 1],
    ]);
    // the process that drew it again holds it while it delivers: nobody draws it a third time
    await Promise.all([b.service.recover(), c.service.recover()]);
    expect(b.engine.calls.length + c.engine.calls.length).toBe(1);
  });

  it('a redraw that fails is refunded, though the first run was committed', async () => {
    const jobId = await doneThenDead('fails the second time');
    const b = await p.start('b'); // its start-up pass takes it over
    (await b.engine.nextCall()).fail('out of memory');
    await until(() => b.events.some((e) => e.type === 'failed' && e.jobId === jobId));
    expect((await p.row(jobId))?.status).toBe('failed');
    expect(await p.ledgerOf(jobId)).toEqual([
      ['commit', 0],
      ['refund', -1],
      ['reserve', 1],
    ]);
  });

  it('a redraw that fails after an admin reset that day gave its units back is not refunded twice', async () => {
    const jobId = await doneThenDead('reset in between');
    const scope = { guildId: p.g(), userId: 'u1' };
    // the admin gives back the day's settled usage: this job's, committed
    await resetUsage(p.db(), scope, { dailyUnits: 100, resetHourUtc: 0 }, 'admin');
    const b = await p.start('b'); // its start-up pass takes it over
    (await b.engine.nextCall()).fail('out of memory');
    await until(() => b.events.some((e) => e.type === 'failed' && e.jobId === jobId));
    // used 0 after the reset, and still 0: a second −cost would leave the member over budget
    const [day] = await p
      .db()
      .select({ used: sql<number>`coalesce(sum(${usageLedger.units}), 0)`.mapWith(Number) })
      .from(usageLedger)
      .where(and(eq(usageLedger.guildId, scope.guildId), eq(usageLedger.userId, scope.userId)));
    expect(day?.used).toBe(0);
    expect(await p.ledgerOf(jobId)).toEqual([
      ['commit', 0],
      ['refund', 0],
      ['reserve', 1],
    ]);
  });

  it('a redraw done before the front end listens is still handed to it, to deliver', async () => {
    const jobId = await doneThenDead('done before the login');
    let backend: FrontEndServices | undefined;
    // the bot's order: the backend, then the job service (its start-up pass draws the job
    // again), then the bot logs in and listens
    const b = await p.start('b', {
      beforeStart: (service) => {
        backend = createBackend({
          config: loadConfig({}),
          db: p.db(),
          jobs: service,
          quota: { dailyUnits: 100, resetHourUtc: 0 },
          model: () => ({ name: 'tiny', hash: '0123456789' }),
        });
      },
    });
    (await b.engine.nextCall()).finish();
    await until(() => b.events.some((e) => e.type === 'done' && e.jobId === jobId));
    const handed: RecoveredJob[] = [];
    backend?.onRecovered((job) => handed.push(job));
    expect(handed.map((j) => j.info.jobId)).toEqual([jobId]);
    expect((await handed[0]?.events.result)?.type).toBe('done');
    // delivered, as the bot would (else a later case's recovery draws it again)
    await backend?.recordMessages(jobId, ['m1']);
  });

  it('drawn again and undelivered each time past maxAttempts: refunded, not drawn again', async () => {
    const jobId = await doneThenDead('never gets out');
    // (started twice already: its first run, and a redraw whose process died too)
    await p.db().update(jobs).set({ attempts: 3 }).where(eq(jobs.id, jobId));
    const b = await p.start('b');
    await until(() => b.events.some((e) => e.type === 'failed' && e.jobId === jobId));
    expect(b.events.find((e) => e.jobId === jobId && e.type === 'failed')).toMatchObject({
      reason: 'undelivered',
      refunded: true,
    });
    expect(b.engine.calls).toHaveLength(0);
    expect(await p.ledgerOf(jobId)).toEqual([
      ['commit', 0],
      ['refund', -1],
      ['reserve', 1],
    ]);
  });

  it('a done job that was delivered, or finished more than 24 h ago, is left alone', async () => {
    const delivered = await doneThenDead('delivered');
    await recordDelivery(p.db(), delivered, ['m1']);
    const ancient = await doneThenDead('ancient');
    await p
      .db()
      .update(jobs)
      .set({ finishedAt: sql`now() - interval '25 hours'`, heartbeatAt: sql`now() - interval '25 hours'` })
      .where(eq(jobs.id, ancient));
    const b = await p.start('b');
    await b.service.recover();
    expect(b.engine.calls).toHaveLength(0);
    expect((await p.row(delivered))?.status).toBe('done');
    expect((await p.row(ancient))?.status).toBe('done');
  });

  it('a done job from before redraws existed (its heartbeat stopped before its end) is left alone', async () => {
    const jobId = await doneThenDead('ended by the old version');
    // as the version before leaves it: the running job's last heartbeat, then its end, token cleared
    await p
      .db()
      .update(jobs)
      .set({
        heartbeatAt: sql`now() - interval '2 hours'`,
        finishedAt: sql`now() - interval '2 hours' + interval '3 seconds'`,
        interactionToken: null,
      })
      .where(eq(jobs.id, jobId));
    const b = await p.start('b');
    await b.service.recover();
    expect(b.engine.calls).toHaveLength(0);
    expect(await p.row(jobId)).toMatchObject({ status: 'done', attempts: 1 });
  });

  it('a done job its live process is still delivering is not taken from it', async () => {
    // quick heartbeats and a short staleness bound: only the heartbeat keeps it
    const a = await p.start('a', { heartbeatMs: 50, staleMs: 1_000 });
    const h = await p.submit(a.service, 'being delivered');
    (await a.engine.nextCall()).finish();
    expect((await h.result).type).toBe('done');
    const b = await p.start('b', { heartbeatMs: 50, staleMs: 1_000 });
    // past the staleness bound since it ended
    await new Promise((r) => setTimeout(r, 1_500));
    await b.service.recover();
    expect(b.engine.calls).toHaveLength(0);
    expect((await p.row(h.jobId))?.owner).toBe(a.service.instanceId);
    // delivered (the front end records it): it is let go, and stays done
    await recordDelivery(p.db(), h.jobId, ['m1']);
    a.service.delivered(h.jobId);
    await new Promise((r) => setTimeout(r, 1_500));
    await b.service.recover();
    expect(b.engine.calls).toHaveLength(0);
    expect((await p.row(h.jobId))?.status).toBe('done');
  });
});
