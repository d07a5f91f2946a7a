// Slots of a bot process that died holding them (SIGKILL, OOM, a release lost to a reset) are
// freed once Redis has not heard from it for `deadAfterMs`; a live process's are not, however
// long it holds them. Time is compressed through the limiter settings; the defaults (20 s dead,
// 5 s heartbeat, a sweep a minute) are the same code.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLimiters, type LimiterSettings, type Limiters } from '../../src/jobs/limiters.ts';
import { REAPER_LUA } from '../../src/jobs/reaper.ts';
import { type PrivateServer, startPrivateRedis } from '../support/private-servers.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
/** Long enough that a busy 2-core machine never lets a live test process look dead. */
const DEAD_AFTER_MS = 3_000;
const HEARTBEAT_MS = 200;
/** Generous bound for slots to come back once the threshold has passed. */
const COME_BACK_MS = DEAD_AFTER_MS + 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(attempt: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  for (const end = Date.now() + ms; ; await sleep(100)) {
    const got = await attempt();
    if (got !== undefined || Date.now() > end) return got;
  }
}

interface Holder {
  child: ChildProcess;
  held: { queue: number; users: number };
}

/** A real bot process (node with tsx's loader) that takes slots and holds them until killed. */
function startHolder(settings: LimiterSettings, queueSlots: number, users: string[]): Promise<Holder> {
  const tsxLoader = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const child = spawn(
    process.execPath,
    [
      '--import',
      tsxLoader,
      path.join(root, 'test', 'support', 'admission-child.ts'),
      JSON.stringify({ settings, queueSlots, users }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the holder never reported its slots'));
    }, 30_000);
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve({ child, held: JSON.parse(buffer.slice(0, nl)) as Holder['held'] });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the holder exited (${code ?? signal}) before reporting`));
    });
  });
}

function killHolder({ child }: Holder): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('admission slots of a bot process that is no longer seen', () => {
  let redis: PrivateServer;
  let admin: Redis;
  const opened: Limiters[] = [];
  const holders: Holder[] = [];

  beforeAll(async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    admin.on('error', () => {});
  });
  afterEach(async () => {
    for (const h of holders.splice(0)) await killHolder(h);
    for (const l of opened.splice(0)) await l.close();
    redis.resume();
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.destroy();
  });

  const settings = (namespace: string, more: Partial<LimiterSettings> = {}): LimiterSettings => ({
    perUser: 1,
    queueMax: 2,
    redisUrl: redis.url,
    namespace,
    deadAfterMs: DEAD_AFTER_MS,
    heartbeatMs: HEARTBEAT_MS,
    ...more,
  });
  const open = (s: LimiterSettings) => {
    const l = createLimiters(s);
    opened.push(l);
    return l;
  };

  it('a process SIGKILLed holding the queue and a user slot: refused at first, then both slots come back', async () => {
    // no periodic sweep here: the refused tryAcquire itself frees the dead process's slots
    const s = settings('killed', { reapEveryMs: Number.POSITIVE_INFINITY });
    const holder = await startHolder(s, 2, ['g:alice']);
    holders.push(holder);
    expect(holder.held).toMatchObject({ queue: 2, users: 1 });
    const here = open(s);
    await killHolder(holder);

    // the dead process was seen a moment ago: its slots still count
    expect(await here.queue.tryAcquire('all')).toBeUndefined();
    expect(await here.users.tryAcquire('g:alice')).toBeUndefined();
    expect(await here.queue.held('all')).toBe(2);

    const queueSlot = await until(() => here.queue.tryAcquire('all'), COME_BACK_MS);
    expect(queueSlot).toBeDefined();
    const userSlot = await until(() => here.users.tryAcquire('g:alice'), COME_BACK_MS);
    expect(userSlot).toBeDefined();
    // the counts are Bottleneck's own again: only this process's slots, and the limits hold
    expect(await here.queue.held('all')).toBe(1);
    expect(await here.users.held('g:alice')).toBe(1);
    expect(await here.users.tryAcquire('g:alice')).toBeUndefined();
    const second = await here.queue.tryAcquire('all');
    expect(second).toBeDefined();
    expect(await here.queue.tryAcquire('all')).toBeUndefined();
    for (const slot of [queueSlot, userSlot, second]) slot?.release();
  });

  it('the periodic sweep frees a dead process’s queue slots although nobody asks for one', async () => {
    const s = settings('swept', { reapEveryMs: 250 });
    const holder = await startHolder(s, 2, []);
    holders.push(holder);
    const here = open(s);
    expect(await here.queue.held('all')).toBe(2);
    await killHolder(holder);
    const freed = await until(
      async () => ((await here.queue.held('all')) === 0 ? true : undefined),
      COME_BACK_MS,
    );
    expect(freed).toBe(true);
  });

  it('a live process holding its slots idle for several thresholds keeps them: its heartbeats keep it seen', async () => {
    const s = settings('live', { reapEveryMs: 250 });
    const holder = await startHolder(s, 2, ['g:bob']);
    holders.push(holder);
    const here = open(s);
    for (const end = Date.now() + 3 * DEAD_AFTER_MS; Date.now() < end; await sleep(300)) {
      expect(await here.queue.tryAcquire('all')).toBeUndefined();
      expect(await here.users.tryAcquire('g:bob')).toBeUndefined();
    }
    expect(await here.queue.held('all')).toBe(2);
    expect(await here.users.held('g:bob')).toBe(1);
    // the reaper did look (its script was loaded into Redis) and let the live holder be
    const sha = createHash('sha1').update(REAPER_LUA).digest('hex');
    expect(await admin.script('EXISTS', sha)).toEqual([1]);
  });

  it('right after Redis was away, nobody is taken for dead until this process has been in touch for a whole threshold', async () => {
    const s = settings('outage', { reapEveryMs: Number.POSITIVE_INFINITY });
    // a live process whose next heartbeat is seconds away
    const holder = open({ ...s, heartbeatMs: 2_500, deadAfterMs: 10_000 });
    const slots = [await holder.queue.tryAcquire('all'), await holder.queue.tryAcquire('all')];
    expect(slots.every(Boolean)).toBe(true);
    const lastSeen = `b_outage-queue-2_client_last_seen`;
    const [holderClient] = (await admin.zrange(lastSeen, 0, -1)) as [string];
    const here = open(s);
    expect(await here.queue.held('all')).toBe(2); // here's queue limiter now heartbeats
    // Redis hangs past the command timeout: here's heartbeats fail, so here knows it was cut off
    redis.pause();
    await sleep(3_000);
    redis.resume();
    await here.ping();
    // as after a long outage, the holder's last heartbeat is older than the threshold
    await admin.zadd(lastSeen, Date.now() - 2 * DEAD_AFTER_MS, holderClient);
    expect(await here.queue.tryAcquire('all')).toBeUndefined();
    expect(await here.queue.held('all')).toBe(2);
    // the holder's heartbeat comes; after a threshold in touch it is seen, and still not taken
    await sleep(DEAD_AFTER_MS + 500);
    expect(await here.queue.tryAcquire('all')).toBeUndefined();
    expect(await here.queue.held('all')).toBe(2);
    for (const slot of slots) slot?.release();
  });

  it('relies on Bottleneck 2.19.5’s key layout: another version must be checked against reaper.ts', async () => {
    expect((Bottleneck as unknown as { version: string }).version).toBe('2.19.5');
    const s = settings('layout', { reapEveryMs: Number.POSITIVE_INFINITY });
    const l = open(s);
    const slot = await l.queue.tryAcquire('all');
    const id = 'layout-queue-2';
    const types = Object.fromEntries(
      await Promise.all(
        ['settings', 'job_weights', 'job_clients', 'client_running', 'client_last_seen'].map(
          async (k) => [k, await admin.type(`b_${id}_${k}`)] as const,
        ),
      ),
    );
    expect(types).toEqual({
      settings: 'hash',
      job_weights: 'hash',
      job_clients: 'hash',
      client_running: 'zset',
      client_last_seen: 'zset',
    });
    slot?.release();
  });
});
