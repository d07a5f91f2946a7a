// PostgreSQL goes away mid-job (a private server, stopped and started again): every job still
// ends done or refunded, no dispatch slot is lost, the ledger balances job by job, and no other
// process takes over (and runs again) a job whose process lived through the outage.
import { eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { type Database, openDatabase } from '../../src/db/client.ts';
import { jobs, usageLedger } from '../../src/db/schema.ts';
import { createBackend } from '../../src/discord/backend.ts';
import type { Limiters } from '../../src/jobs/limiters.ts';
import type { JobEvent, JobService, JobServiceLog } from '../../src/jobs/service.ts';
import { createTestJobService, smallRequest, until } from '../support/job-service.ts';
import { type PrivateServer, startPrivatePostgres } from '../support/private-servers.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

describe('a PostgreSQL blink', () => {
  let pg: PrivateServer;
  let database: Database;
  let service: JobService;
  let limiters: Limiters;
  let engine: StandInEngine;
  let events: JobEvent[];

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    database = await openDatabase({ url: pg.url, max: 4 });
  }, 60_000);
  afterAll(async () => {
    await database?.close();
    await pg?.destroy();
  });
  afterEach(async () => {
    if (!pg.running) await pg.start();
    await service?.stop();
    await limiters?.close();
  });

  const setUp = async (o: { dbRetryMs: number; staleMs?: number; dbAnswerMs?: number }) => {
    engine = new StandInEngine();
    ({ service, limiters } = createTestJobService(database.db, engine, {
      perUser: 3,
      namespace: `blink-${Date.now()}`,
      heartbeatMs: 100,
      staleMs: o.staleMs ?? 60_000,
      dbRetryMs: o.dbRetryMs,
      ...(o.dbAnswerMs ? { dbAnswerMs: o.dbAnswerMs } : {}),
    }));
    events = [];
    service.on((e) => events.push(e));
    await service.start();
  };
  const submit = (userId: string, prompt: string) =>
    service.submit({ kind: 'imagine', guildId: 'g', channelId: 'c', userId, request: smallRequest(prompt) });

  /** Every job of these ended, each reserved once and settled once: commit if done, else refund. */
  const expectBalanced = async (ids: string[]) => {
    // a pooled connection the stop ended while idle answers its next query with that end (then
    // reconnects): these reads are the test's, not the service's, so they take it once
    const read = <T>(query: () => Promise<T>) => query().catch(() => query());
    const rows = (await read(() => database.db.select().from(jobs))).filter((r) => ids.includes(r.id));
    const ledger = await read(() => database.db.select().from(usageLedger));
    expect(rows).toHaveLength(ids.length);
    for (const row of rows) {
      expect(['done', 'failed', 'cancelled']).toContain(row.status);
      const own = ledger.filter((l) => l.jobId === row.id);
      expect(own.filter((l) => l.kind === 'reserve')).toHaveLength(1);
      expect(own.filter((l) => l.kind !== 'reserve').map((l) => l.kind)).toEqual([
        row.status === 'done' ? 'commit' : 'refund',
      ]);
    }
    return rows;
  };

  it('settling retries through a short outage: the job ends done, charged once, and the next one runs', async () => {
    await setUp({ dbRetryMs: 60_000 });
    const a = await submit('u1', 'a');
    const b = await submit('u2', 'b');
    const call = await engine.nextCall();
    await pg.stop();
    call.finish(); // the engine is done while the database is away
    await new Promise((r) => setTimeout(r, 1_000)); // a few failed settle attempts
    expect(events.some((e) => e.type === 'done')).toBe(false);
    await pg.start();
    expect(await a.result).toMatchObject({ type: 'done' });
    (await engine.nextCall()).finish(); // b got the slot once a was settled
    expect(await b.result).toMatchObject({ type: 'done' });
    await expectBalanced([a.jobId, b.jobId]);
    expect(engine.calls).toHaveLength(2); // nothing ran twice
  });

  it('a delivery recorded during a short outage is recorded once the database is back', async () => {
    await setUp({ dbRetryMs: 60_000 });
    const backend = createBackend({
      config: loadConfig({}),
      db: database.db,
      jobs: service,
      quota: { dailyUnits: 50, resetHourUtc: 0 },
      model: () => ({ name: 'tiny', hash: '0123456789' }),
    });
    const a = await submit('u1', 'delivered in a blink');
    (await engine.nextCall()).finish();
    expect(await a.result).toMatchObject({ type: 'done' });
    await pg.stop();
    // the front end has posted the images; its record of them meets the outage (unrecorded, the
    // job would be drawn and posted again once its delivery hold ran out)
    const recording = backend.recordMessages(a.jobId, ['m1']);
    await new Promise((r) => setTimeout(r, 1_000));
    await pg.start();
    await recording;
    const [row] = await database.db.select().from(jobs).where(eq(jobs.id, a.jobId));
    expect(row?.resultMessageIds).toEqual(['m1']);
  });

  it('a longer outage: bookkeeping gives up, slots are released, and recovery finishes every job after', async () => {
    await setUp({ dbRetryMs: 500, staleMs: 300 });
    const a = await submit('u1', 'a');
    const b = await submit('u2', 'b');
    const first = await engine.nextCall();
    await pg.kill();
    first.finish(); // a cannot be settled; b waits in the queue, which is the database
    // a's handle is told the job was let go, and its slot comes back
    expect(await a.result).toMatchObject({ type: 'interrupted' });
    await until(() => service.heldIds().length === 0, 30_000);
    await pg.start();
    // b is claimed as soon as the database answers; recovery puts a back in the queue once it
    // is stale (nobody heartbeats it), and it runs again
    const doneIds = () => new Set(events.filter((e) => e.type === 'done').map((e) => e.jobId));
    for (let n = 0; n < 2; n++) (await engine.nextCall()).finish();
    await until(() => doneIds().has(a.jobId) && doneIds().has(b.jobId), 30_000);
    expect(engine.calls.map((c) => c.prompt).sort()).toEqual(['a', 'a', 'b']);
    // b's own handle saw it through; a was handed to the front end as a recovered job
    expect(await b.result).toMatchObject({ type: 'done' });
    await expectBalanced([a.jobId, b.jobId]);
    expect(events.filter((e) => e.type === 'requeued').map((e) => e.jobId)).toEqual([a.jobId]);
  });

  it('a hung database: a submission or a cancel is refused as unavailable; a job committed late is refunded, never run', async () => {
    await setUp({ dbRetryMs: 60_000, dbAnswerMs: 500 });
    // every connection of the pool open first: a query waiting for one then waits out the pause
    // in the pool's queue, where a new connection to a hung server would time out instead
    // (retried: a connection the previous test's restart broke fails its first query)
    const warm = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await database.db.execute(sql`select pg_sleep(0.1)`);
          return;
        } catch (err) {
          if (attempt === 20) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    await Promise.all([1, 2, 3, 4].map(warm));
    pg.pause();
    for (let n = 0; n < 3; n++) {
      // three, the user's limit: a refused submission gives its admission slot back
      await expect(submit('u1', `hung-${n}`)).rejects.toMatchObject({
        code: 'unavailable',
        context: { service: 'database' },
      });
    }
    // a lookup for a button (cancel) is refused the same way instead of waiting
    await expect(service.cancel('no-such-job', { userId: 'u1', isAdmin: false })).rejects.toMatchObject({
      code: 'unavailable',
    });
    // a command's read before it answers (the server settings) is refused in 2 s, inside
    // Discord's 3 s to answer, instead of leaving the member with "did not respond"
    const backend = createBackend({
      config: loadConfig({}),
      db: database.db,
      jobs: service,
      quota: { dailyUnits: 50, resetHourUtc: 0 },
      model: () => ({ name: 'tiny', hash: '0123456789' }),
    });
    const asked = Date.now();
    await expect(backend.guildSettings('a-guild')).rejects.toMatchObject({
      code: 'unavailable',
      context: { service: 'database' },
    });
    expect(Date.now() - asked).toBeLessThan(2_900);
    // so is a button's lookup of its job, and each /quota-admin call: all before Discord's 3 s
    const unavailable = { code: 'unavailable', context: { service: 'database' } };
    await Promise.all([
      expect(backend.job('nosuchjob')).rejects.toMatchObject(unavailable),
      expect(backend.quota.guildDailyUnits('a-guild')).rejects.toMatchObject(unavailable),
      expect(
        backend.quota.setDailyUnits('a-guild', { scope: 'user', userId: 'u9' }, 5, 'admin'),
      ).rejects.toMatchObject(unavailable),
      expect(backend.quota.resetUser('a-guild', 'u9', 'admin')).rejects.toMatchObject(unavailable),
      expect(backend.quota.setBlocked('a-guild', 'u9', true, 'admin')).rejects.toMatchObject(unavailable),
    ]);
    pg.resume();
    const late = async () =>
      (await database.db.select().from(jobs)).filter((r) => r.request.prompt.startsWith('hung-'));
    // each transaction committed once the database answered again: that job ends, refunded
    await until(async () => {
      const rows = await late();
      return rows.length === 3 && rows.every((r) => r.status === 'cancelled');
    }, 30_000);
    await expectBalanced((await late()).map((r) => r.id));
    const next = await submit('u1', 'after');
    (await engine.nextCall()).finish();
    expect(await next.result).toMatchObject({ type: 'done' });
    expect(engine.calls.map((c) => c.prompt)).toEqual(['after']);
  });

  it('after an outage longer than staleMs, another process does not take over the jobs of a live one', async () => {
    const failures: string[] = [];
    const logTo = (name: string): JobServiceLog => ({
      info: () => {},
      warn: () => {},
      error: (_o, msg) => failures.push(`${name}: ${msg}`),
    });
    const processes = ['a', 'b'].map((name) => {
      const own = new StandInEngine();
      const made = createTestJobService(database.db, own, {
        instanceId: `${name}-live`,
        namespace: `live-${name}-${Date.now()}`,
        heartbeatMs: 100,
        staleMs: 1_000,
        dbRetryMs: 60_000,
        log: logTo(name),
      });
      return { ...made, engine: own };
    });
    const [a, b] = processes as [(typeof processes)[0], (typeof processes)[0]];
    ({ service, limiters } = a); // stopped after the test
    try {
      await a.service.start();
      await b.service.start();
      const h = await a.service.submit({
        kind: 'imagine',
        guildId: 'g',
        channelId: 'c',
        userId: 'u1',
        request: smallRequest('live'),
      });
      const call = await a.engine.nextCall();
      await pg.kill();
      await until(() => ['a:', 'b:'].every((p) => failures.some((f) => f.startsWith(p))), 30_000);
      await new Promise((r) => setTimeout(r, 1_500)); // a's last heartbeat is now older than staleMs
      await pg.start();
      await b.service.recover(); // as b's recovery timer may, before a's next heartbeat lands
      call.finish();
      expect(await h.result).toMatchObject({ type: 'done' });
      expect(b.engine.calls).toHaveLength(0); // the job ran once, where it was
      await expectBalanced([h.jobId]);
    } finally {
      await b.service.stop();
      await b.limiters.close();
    }
  });
});
