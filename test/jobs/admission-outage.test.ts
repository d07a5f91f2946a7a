// The admission gates on a Redis of their own that is flushed, restarted, hung (SIGSTOP) and
// killed: a gate answers within seconds, an outage is never mistaken for a refusal, and admission
// comes back by itself (issue 7, items 5 and 6).
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { createLimiters, type Limiters, UNAVAILABLE_MESSAGE } from '../../src/jobs/limiters.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService } from '../support/job-service.ts';
import { type PrivateServer, startPrivateRedis } from '../support/private-servers.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

/** Generous: the gates give up after 5 s, Redis commands after 2 s. */
const ANSWER_BOUND_MS = 10_000;

const unavailable = { code: 'unavailable', message: UNAVAILABLE_MESSAGE };

/** The outcome of `work` and how long it took; never waits more than `ANSWER_BOUND_MS` + 5 s. */
async function timed<T>(work: Promise<T>) {
  const started = Date.now();
  const outcome = await Promise.race([
    work.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<{ hung: true }>((r) => setTimeout(() => r({ hung: true }), ANSWER_BOUND_MS + 5_000)),
  ]);
  return { ...outcome, ms: Date.now() - started };
}

describe('admission gates when Redis fails', () => {
  let redis: PrivateServer;
  let admin: Redis;
  let limiters: Limiters | undefined;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
  });
  afterEach(async () => {
    redis.resume();
    if (!redis.running) await redis.start();
    await limiters?.close();
    limiters = undefined;
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.destroy();
  });

  const create = () => {
    limiters = createLimiters({ perUser: 1, queueMax: 3, redisUrl: redis.url });
    return limiters;
  };

  it('a FLUSHALL mid-life: the next tryAcquire is admitted and limits count again', async () => {
    const l = create();
    expect((await l.users.tryAcquire('alice'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect((await l.queue.tryAcquire('all'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    await admin.flushall();
    // Redis forgot every slot: both gates start from zero and count again
    const slot = await l.users.tryAcquire('bob');
    expect(slot?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect(await l.users.tryAcquire('bob')).toBeUndefined();
    expect((await l.queue.tryAcquire('all'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect(await l.queue.held('all')).toBe(1);
    slot?.release();
  });

  it('a Redis restart mid-life: once it answers again the next tryAcquire is admitted', async () => {
    const l = create();
    expect((await l.users.tryAcquire('alice'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    await redis.restart();
    await l.ping();
    expect((await l.users.tryAcquire('bob'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect(await l.users.tryAcquire('bob')).toBeUndefined();
    expect((await l.queue.tryAcquire('all'))?.release).toBeTypeOf('function'); // admitted: a slot to release
  });

  it('Redis hung (SIGSTOP): tryAcquire and held fail as unavailable within seconds, then recover', async () => {
    const l = create();
    await l.ping();
    redis.pause();
    const acquire = await timed(l.users.tryAcquire('alice'));
    const held = await timed(l.queue.held('all'));
    redis.resume();
    for (const call of [acquire, held]) {
      expect(call).toMatchObject({ error: unavailable });
      expect(call.ms).toBeLessThan(ANSWER_BOUND_MS);
    }
    // the cause stays attached for the log
    expect(((acquire as { error: Error }).error.cause as Error).message).toMatch(/timed out|did not answer/);
    const slot = await l.users.tryAcquire('alice');
    expect(slot?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect(await l.users.tryAcquire('alice')).toBeUndefined();
    expect(await l.users.held('alice')).toBe(1);
  });

  it('Redis killed: tryAcquire fails as unavailable at once; restarted, admission works again', async () => {
    const l = create();
    await l.ping();
    await redis.kill();
    const acquire = await timed(l.users.tryAcquire('alice'));
    expect(acquire).toMatchObject({ error: unavailable });
    expect(acquire.ms).toBeLessThan(ANSWER_BOUND_MS);
    await redis.start();
    await l.ping();
    expect((await l.users.tryAcquire('alice'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect((await l.queue.tryAcquire('all'))?.release).toBeTypeOf('function'); // admitted: a slot to release
  });

  it('a release lost to a dropped connection is sent again: the slot is freed, not counted for ever', async () => {
    // a namespace of its own: earlier tests closed limiters that still held queue slots
    const l = createLimiters({ perUser: 1, queueMax: 3, redisUrl: redis.url, namespace: 'lost-release' });
    limiters = l;
    const slot = await l.queue.tryAcquire('all');
    expect(slot).toBeDefined();
    // drop the limiters' connections (not admin's): the release below fails on the way
    const self = Number(await admin.client('ID'));
    for (const id of ((await admin.client('LIST')) as string).matchAll(/^id=(\d+)/gm)) {
      if (Number(id[1]) !== self) await admin.client('KILL', 'ID', id[1] as string);
    }
    slot?.release();
    // the process lives on and heartbeats, so no reaper would free it: the release itself comes again
    let held = 1;
    for (const end = Date.now() + ANSWER_BOUND_MS; held !== 0 && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 200));
      held = await l.queue.held('all').catch(() => 1);
    }
    expect(held).toBe(0);
  });

  it('a limiter made while Redis hung is replaced, so that user is admitted once Redis answers', async () => {
    const l = create();
    await l.ping();
    redis.pause();
    // carol's limiter is made now: registering it with Redis times out, which Bottleneck never retries
    expect(await timed(l.users.tryAcquire('carol'))).toMatchObject({ error: unavailable });
    redis.resume();
    expect((await l.users.tryAcquire('carol'))?.release).toBeTypeOf('function'); // admitted: a slot to release
    expect(await l.users.tryAcquire('carol')).toBeUndefined();
  });

  it('Redis down when the limiters are made: unavailable within seconds, admitted once it is up', async () => {
    await redis.kill();
    const l = create();
    const acquire = await timed(l.users.tryAcquire('dave'));
    expect(acquire).toMatchObject({ error: unavailable });
    expect(acquire.ms).toBeLessThan(ANSWER_BOUND_MS);
    await redis.start();
    await l.ping();
    expect((await l.users.tryAcquire('dave'))?.release).toBeTypeOf('function'); // admitted: a slot to release
  });
});

describe('job service when Redis is down', () => {
  let redis: PrivateServer;
  let t: TestDatabase;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    t = await freshDatabase('pglite');
  });
  afterAll(async () => {
    await redis?.destroy();
    await t?.destroy();
  });

  it('answers "the queue service is unavailable", not "you already have 2 jobs", and charges nothing', async () => {
    const { service, limiters } = createTestJobService(t.db, new StandInEngine(), {
      perUser: 2,
      redisUrl: redis.url,
    });
    try {
      await limiters.ping();
      await redis.kill();
      const submit = service.submit({
        kind: 'imagine',
        guildId: 'g',
        channelId: 'c',
        userId: 'erin',
        request: { ...DEFAULT_REQUEST, prompt: 'a cat', seed: 1 },
      });
      await expect(submit).rejects.toMatchObject(unavailable);
      const rows = await t.db.query.jobs.findMany();
      expect(rows).toHaveLength(0);
    } finally {
      await service.stop();
      await limiters.close();
    }
  });
});
