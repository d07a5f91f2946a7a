// Which GPU workers are up (src/jobs/worker-presence.ts, worker-watch.ts, worker-models.ts) on
// both databases: a worker's row is live while it beats and stale once silent past the bound, a
// clean stop deletes it, the infotexts' model comes from a live worker, and a gateway's watch
// warns once per outage while jobs wait with no worker, and says when one is back.
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workerModels } from '../../src/db/schema.ts';
import type { JobServiceLog } from '../../src/jobs/types.ts';
import { latestWorkerModel, publishWorkerModel, workerState } from '../../src/jobs/worker-models.ts';
import { startWorkerPresence } from '../../src/jobs/worker-presence.ts';
import { startWorkerWatch } from '../../src/jobs/worker-watch.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { insertJob } from '../support/job-rows.ts';
import { smallRequest, until } from '../support/job-service.ts';

const STALE_MS = 30_000;

function capture(): { log: JobServiceLog; lines: { level: string; msg: string; o: object }[] } {
  const lines: { level: string; msg: string; o: object }[] = [];
  const at = (level: string) => (o: object, msg: string) => void lines.push({ level, msg, o });
  return { log: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe.each(DATABASE_KINDS)('GPU worker liveness on %s', (kind) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await freshDatabase(kind);
  });
  afterEach(async () => {
    await t?.destroy();
  });

  /** Sets a worker's seen_at (and started_at) this many seconds in the past, by the database's clock. */
  const age = (id: string, seenS: number, startedS = seenS) =>
    t.db.execute(
      sql`update worker_models set seen_at = now() - make_interval(secs => ${seenS}),
          started_at = now() - make_interval(secs => ${startedS}) where instance_id = ${id}`,
    );
  const ids = async () => (await t.db.select().from(workerModels)).map((r) => r.instanceId).sort();
  const queueJob = (id: string) =>
    insertJob(t.db, {
      id,
      kind: 'imagine',
      guildId: 'g',
      channelId: 'c',
      userId: 'u',
      request: smallRequest(id),
      denoises: [0.6],
      seed: 1,
      cost: 1,
      status: 'queued',
    });

  it('a worker is live while it beats, not once silent past the bound; a clean stop removes its row', async () => {
    const { log } = capture();
    const model = { name: 'tiny', hash: 'abcd' };
    // beats by hand here: the timer is the next test's
    const presence = await startWorkerPresence({
      db: t.db,
      instanceId: 'w1',
      model,
      log,
      everyMs: undefined,
    });
    expect(await workerState(t.db, STALE_MS)).toEqual({ live: 1, queued: 0 });
    // silent past the bound (a crash): not live, though its row is still there
    await age('w1', 31);
    expect(await workerState(t.db, STALE_MS)).toEqual({ live: 0, queued: 0 });
    expect(await ids()).toEqual(['w1']);
    // its next beat: live again
    await presence.beat();
    expect(await workerState(t.db, STALE_MS)).toEqual({ live: 1, queued: 0 });
    await presence.stop();
    expect(await ids()).toEqual([]);
    // a beat after the stop does not bring the row back
    await presence.beat();
    expect(await ids()).toEqual([]);
    expect(await workerState(t.db, STALE_MS)).toEqual({ live: 0, queued: 0 });
  });

  it('the heartbeat timer refreshes seen_at; without one (PGlite: one process) the row is written once', async () => {
    const { log } = capture();
    const model = { name: 'tiny', hash: 'abcd' };
    const beating = await startWorkerPresence({ db: t.db, instanceId: 'beating', model, log, everyMs: 50 });
    const solo = await startWorkerPresence({ db: t.db, instanceId: 'solo', model, log, everyMs: undefined });
    await age('beating', 31);
    await age('solo', 31);
    const live = async () =>
      (
        await t.db
          .select({ id: workerModels.instanceId })
          .from(workerModels)
          .where(sql`${workerModels.seenAt} > now() - interval '30 seconds'`)
      ).map((r) => r.id);
    await until(async () => (await live()).includes('beating'), 5_000);
    expect(await live()).toEqual(['beating']);
    await beating.stop();
    await solo.stop();
    expect(await ids()).toEqual([]);
  });

  it('a starting worker forgets workers silent for a day, and keeps the others', async () => {
    const { log } = capture();
    await publishWorkerModel(t.db, 'long-dead', { name: 'old', hash: '1' });
    await publishWorkerModel(t.db, 'recently-dead', { name: 'old', hash: '1' });
    await age('long-dead', 2 * 86_400);
    await age('recently-dead', 3_600);
    const presence = await startWorkerPresence({
      db: t.db,
      instanceId: 'new',
      model: { name: 'tiny', hash: 'abcd' },
      log,
      everyMs: undefined,
    });
    await until(async () => !(await ids()).includes('long-dead'));
    expect(await ids()).toEqual(['new', 'recently-dead']);
    await presence.stop();
  });

  it('a worker starting beside live workers with another model says so, naming both; same model or dead ones: silent', async () => {
    await publishWorkerModel(t.db, 'same', { name: 'tiny', hash: 'abcd' });
    await publishWorkerModel(t.db, 'dead-other', { name: 'old', hash: '1111' });
    await age('dead-other', 40);
    const tinyWorker = (instanceId: string, log: JobServiceLog) =>
      startWorkerPresence({
        db: t.db,
        instanceId,
        model: { name: 'tiny', hash: 'abcd' },
        log,
        everyMs: undefined,
      });
    const quiet = capture();
    const first = await tinyWorker('first', quiet.log);
    await publishWorkerModel(t.db, 'other', { name: 'anime', hash: 'ffff' });
    const loud = capture();
    const second = await tinyWorker('second', loud.log);
    // the check is made before the start returns
    const warned = loud.lines.filter((l) => l.level === 'warn' && /different model/.test(l.msg));
    expect(warned.map((l) => l.o)).toEqual([{ model: 'tiny [abcd]', others: ['other: anime [ffff]'] }]);
    // the first worker's check, before 'other' was up, found only the same model and a dead one
    expect(quiet.lines.filter((l) => /different model|compare/.test(l.msg))).toEqual([]);
    await first.stop();
    await second.stop();
  });

  it('the infotexts name a live worker’s model: the one started last; a dead one only if none is live', async () => {
    expect(await latestWorkerModel(t.db, STALE_MS)).toBeUndefined();
    await publishWorkerModel(t.db, 'dead', { name: 'dead-model', hash: 'd' });
    await age('dead', 40, 1);
    expect((await latestWorkerModel(t.db, STALE_MS))?.name).toBe('dead-model');
    await publishWorkerModel(t.db, 'live-old', { name: 'old-model', hash: 'o' });
    await age('live-old', 1, 3_600);
    // started before the dead one, but live
    expect((await latestWorkerModel(t.db, STALE_MS))?.name).toBe('old-model');
    await publishWorkerModel(t.db, 'live-new', { name: 'new-model', hash: 'n' });
    await age('live-new', 2, 60);
    // both live: the one started last, whichever beat last
    expect((await latestWorkerModel(t.db, STALE_MS))?.name).toBe('new-model');
    await publishWorkerModel(t.db, 'live-old', { name: 'old-model', hash: 'o' });
    expect((await latestWorkerModel(t.db, STALE_MS))?.name).toBe('new-model');
  });

  it('a gateway’s watch: one warning per outage while jobs wait, a line when a worker is back', async () => {
    const { log, lines } = capture();
    const changes: boolean[] = [];
    // a long interval: the test looks with check()
    const watch = await startWorkerWatch({ db: t.db, log, staleMs: STALE_MS, everyMs: 600_000 });
    watch.onChange((online) => changes.push(online));
    expect(watch.live()).toBe(0);
    // no worker, but nothing waits: nothing to say
    expect(lines).toEqual([]);
    await queueJob('j1');
    await watch.check();
    await queueJob('j2');
    await watch.check();
    await watch.check();
    const warnings = () => lines.filter((l) => l.level === 'warn');
    expect(warnings().map((l) => l.msg)).toEqual([
      'jobs are waiting and no GPU worker is online: start one (PROCESS_ROLE=worker)',
    ]);
    expect(warnings()[0]?.o).toEqual({ queued: 1 });
    expect(changes).toEqual([]);

    await publishWorkerModel(t.db, 'w1', { name: 'tiny', hash: 'abcd' });
    await watch.check();
    expect(watch.live()).toBe(1);
    expect(changes).toEqual([true]);
    expect(lines.at(-1)).toEqual({
      level: 'info',
      msg: 'a GPU worker is online again: the waiting jobs start',
      o: { workers: 1 },
    });
    await watch.check();
    expect(lines).toHaveLength(2);

    // the worker dies (silent past the bound): a new outage, a new warning
    await age('w1', 31);
    await watch.check();
    expect(watch.live()).toBe(0);
    expect(changes).toEqual([true, false]);
    expect(warnings()).toHaveLength(2);
    await watch.stop();
  });

  it('after an outage the gateway could not read through, the workers get the bound to beat again before they count as gone', async () => {
    const { log, lines } = capture();
    const changes: boolean[] = [];
    const staleMs = 1_000;
    await queueJob('j1');
    await publishWorkerModel(t.db, 'w1', { name: 'tiny', hash: 'abcd' });
    const watch = await startWorkerWatch({ db: t.db, log, staleMs, everyMs: 600_000 });
    watch.onChange((online) => changes.push(online));
    expect(watch.live()).toBe(1);
    // the database is gone for the gateway (its reads fail) and for the worker (its beats do)
    await t.db.execute(sql`alter table worker_models rename to worker_models_away`);
    await watch.check();
    await t.db.execute(sql`alter table worker_models_away rename to worker_models`);
    await age('w1', 2);
    // back: the worker has not beaten yet; it is not reported gone, nor the admin told to start one
    await watch.check();
    expect(watch.live()).toBe(1);
    expect(changes).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual(['could not read which GPU workers are live; retrying']);
    // it beats: nothing to say
    await publishWorkerModel(t.db, 'w1', { name: 'tiny', hash: 'abcd' });
    await watch.check();
    expect(changes).toEqual([]);
    // one that died meanwhile counts as gone once the bound has passed since the database came back
    await age('w1', 2);
    await new Promise((r) => setTimeout(r, staleMs + 100));
    await watch.check();
    expect(watch.live()).toBe(0);
    expect(changes).toEqual([false]);
    expect(lines.at(-1)?.msg).toBe(
      'jobs are waiting and no GPU worker is online: start one (PROCESS_ROLE=worker)',
    );
    await watch.stop();
  });
});

// A hung database (here: worker_models locked by another session, so every query on it waits)
// must not hold a worker's or a gateway's stop for ever, and the gateway says it cannot read.
describe('GPU worker liveness with a hung database (postgres)', () => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await freshDatabase('postgres');
  });
  afterEach(async () => {
    await t?.destroy();
  });

  /** Holds an exclusive lock on worker_models until the returned function is called. */
  async function hang(): Promise<() => Promise<void>> {
    const other = postgres((t.location as { url: string }).url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const tx = other.begin(async (s) => {
      await s`lock table worker_models in access exclusive mode`;
      locked();
      await held;
    });
    await isLocked;
    return async () => {
      release();
      await tx;
      await other.end();
    };
  }
  const within = <T>(p: Promise<T>, ms: number) =>
    Promise.race([p.then(() => 'done'), new Promise((r) => setTimeout(() => r('still waiting'), ms))]);

  it('a worker’s stop gives up on a hung beat and its row within its bound', async () => {
    const { log, lines } = capture();
    const presence = await startWorkerPresence({
      db: t.db,
      instanceId: 'w1',
      model: { name: 'tiny', hash: 'abcd' },
      log,
      everyMs: undefined,
    });
    const unhang = await hang();
    void presence.beat(); // waits on the lock
    expect(await within(presence.stop(), 6_000)).toBe('done');
    expect(lines.map((l) => l.msg)).toEqual([
      'could not remove this worker’s row; it counts as gone once stale',
    ]);
    await unhang();
  }, 15_000);

  it('a gateway’s watch reports a read the database does not answer, and stops anyway', async () => {
    const { log, lines } = capture();
    const watch = await startWorkerWatch({
      db: t.db,
      log,
      staleMs: STALE_MS,
      everyMs: 600_000,
      answerMs: 500,
    });
    const unhang = await hang();
    await watch.check();
    await watch.check(); // the same read is waited on again, and reported once
    expect(lines.map((l) => l.msg)).toEqual(['could not read which GPU workers are live; retrying']);
    expect(watch.live()).toBe(0); // what was seen last stands
    const checking = watch.check();
    expect(await within(watch.stop(), 3_000)).toBe('done');
    await checking;
    await unhang();
  }, 15_000);
});
