// Idle users cost Redis nothing: a user's limiter (which heartbeats every 5 s) is dropped a while
// after their last slot is released, never while a slot is held (issue 7, item 12). Time is
// compressed through `idleMs`; the 15-minute default is the same code.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLimiters, type Limiters } from '../../src/jobs/limiters.ts';
import { type PrivateServer, startPrivateRedis } from '../support/private-servers.ts';

const IDLE_MS = 300;
/** Bottleneck's heartbeat period on Redis, plus a margin. */
const HEARTBEAT_WINDOW_MS = 5_500;

describe('idle user limiters on Redis', () => {
  let redis: PrivateServer;
  let admin: Redis;
  const opened: Limiters[] = [];

  beforeAll(async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const l of opened) await l.close();
    admin?.disconnect();
    await redis?.destroy();
  });

  const open = (namespace: string) => {
    const l = createLimiters({
      perUser: 1,
      queueMax: 10,
      redisUrl: redis.url,
      namespace,
      idleMs: IDLE_MS,
    });
    opened.push(l);
    return l;
  };
  /** Pub/sub channels of live user limiters: each limiter subscribes to two while it lives. */
  const channels = async (namespace: string) =>
    ((await admin.pubsub('CHANNELS', `b_${namespace}-users-*`)) as string[]).length;
  /** Scripts Redis ran (Bottleneck's heartbeats and calls) in `ms`. */
  const scriptCalls = async (ms: number) => {
    // ioredis sends a script's first call as EVAL, later ones as EVALSHA
    const count = async () =>
      [...(await admin.info('commandstats')).matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    const before = await count();
    await new Promise((r) => setTimeout(r, ms));
    return (await count()) - before;
  };
  const until = async (check: () => Promise<boolean>, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end && !(await check()); )
      await new Promise((r) => setTimeout(r, 50));
  };

  it('drops an idle user’s limiter after the idle time: no subscription left, no heartbeat', async () => {
    const l = open('idle');
    for (let i = 0; i < 50; i++) (await l.users.tryAcquire(`g:u${i}`))?.release();
    expect(await channels('idle')).toBeGreaterThan(0);
    await until(async () => (await channels('idle')) === 0, 5_000);
    expect(await channels('idle')).toBe(0);
    expect(await scriptCalls(HEARTBEAT_WINDOW_MS)).toBe(0);
  });

  it('keeps the limiter of a user whose slot is held past the idle time, and the slot counted', async () => {
    const here = open('held');
    const elsewhere = open('held'); // another bot process on the same Redis
    const slot = await here.users.tryAcquire('g:alice');
    expect(slot?.release).toBeTypeOf('function'); // admitted: a slot to release
    await new Promise((r) => setTimeout(r, IDLE_MS * 5));
    expect(await elsewhere.users.tryAcquire('g:alice')).toBeUndefined();
    expect(await here.users.held('g:alice')).toBe(1);
    // alice's limiter here is alive, so it heartbeats: the window above would have seen it
    expect(await scriptCalls(HEARTBEAT_WINDOW_MS)).toBeGreaterThan(0);
    slot?.release();
    let again: Awaited<ReturnType<Limiters['users']['tryAcquire']>>;
    await until(async () => {
      again = await elsewhere.users.tryAcquire('g:alice');
      return again !== undefined;
    }, 5_000);
    expect(again?.release).toBeTypeOf('function'); // admitted: a slot to release
    again?.release();
  });
});
