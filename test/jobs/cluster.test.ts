// Two bot processes' schedulers sharing limits through the machine's real Redis (TEST_REDIS_URL,
// default redis://127.0.0.1:6379) and one PostgreSQL database. Never skipped: CI has Redis.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { createLimiters, type Limiters } from '../../src/jobs/limiters.ts';
import type { JobEvent, JobService } from '../../src/jobs/service.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService } from '../support/job-service.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const namespace = `hiresbot-test-${randomBytes(4).toString('hex')}`;

interface Node {
  service: JobService;
  engine: StandInEngine;
  limiters: Limiters;
  events: JobEvent[];
}

describe('two schedulers on one Redis', () => {
  let t: TestDatabase;
  const nodes: Node[] = [];

  beforeAll(async () => {
    t = await freshDatabase('postgres');
    for (let i = 0; i < 2; i++) {
      const engine = new StandInEngine();
      const { service, limiters } = createTestJobService(t.db, engine, {
        perUser: 2,
        queueMax: 4,
        redisUrl: REDIS_URL,
        namespace,
        quota: { dailyUnits: 0, resetHourUtc: 0 },
      });
      const events: JobEvent[] = [];
      service.on((e) => events.push(e));
      nodes.push({ service, engine, limiters, events });
    }
  });
  afterAll(async () => {
    for (const n of nodes) {
      await n.service.stop();
      await n.limiters.close();
    }
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`b_${namespace}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await t?.destroy();
  });

  const submit = (node: Node, userId: string) =>
    node.service.submit({
      kind: 'imagine',
      guildId: 'g',
      channelId: 'c',
      userId,
      request: { ...DEFAULT_REQUEST, prompt: `${userId} on ${nodes.indexOf(node)}`, seed: 1 },
    });

  it('shares the per-user limit and the queue cap across processes', async () => {
    const [a, b] = nodes as [Node, Node];
    await submit(a, 'alice');
    await submit(b, 'alice');
    // alice holds 2 jobs, one on each process: a third is refused on either
    await expect(submit(a, 'alice')).rejects.toMatchObject({ code: 'user-limit' });
    await expect(submit(b, 'alice')).rejects.toMatchObject({ code: 'user-limit' });
    await submit(a, 'bob');
    await submit(b, 'carol');
    // four jobs in the cluster = QUEUE_MAX
    await expect(submit(a, 'dave')).rejects.toMatchObject({
      code: 'queue-full',
      message: 'The queue is full (4 jobs waiting or running). Try again in a few minutes.',
    });
    expect(await a.limiters.queue.held('all')).toBe(4);
    expect(await b.limiters.users.held('g:alice')).toBe(2);

    // alice's job on process B finishes: both processes see the freed slots
    (await b.engine.nextCall()).finish();
    const done = () => b.events.some((e) => e.type === 'done');
    for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(done()).toBe(true);
    await expect(submit(a, 'alice')).resolves.toMatchObject({ cost: 3.33 });
  });

  it('a changed limit takes effect although Redis holds the old one', async () => {
    const ns = `${namespace}-changed`;
    const old = createLimiters({
      perUser: 1,
      queueMax: 1,
      redisUrl: REDIS_URL,
      namespace: ns,
    });
    const slot = await old.queue.tryAcquire('all');
    expect(await old.queue.tryAcquire('all')).toBeUndefined();
    slot?.release();
    await old.close();
    const changed = createLimiters({
      perUser: 1,
      queueMax: 3,
      redisUrl: REDIS_URL,
      namespace: ns,
    });
    try {
      const held = [];
      for (let i = 0; i < 3; i++) held.push(await changed.queue.tryAcquire('all'));
      expect(held.every(Boolean)).toBe(true);
      expect(await changed.queue.tryAcquire('all')).toBeUndefined();
      for (const h of held) h?.release();
    } finally {
      await changed.close();
    }
  });
});
