// The private servers do what outage tests rely on: each way of going away is real.
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateServer, startPrivatePostgres, startPrivateRedis } from './private-servers.ts';

/** A client that fails fast instead of queueing or retrying, so an outage shows as an error. */
function redisClient(url: string) {
  const client = new Redis(url, {
    commandTimeout: 500,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 50,
  });
  client.on('error', () => {});
  return client;
}

async function untilReady(client: Redis) {
  for (let i = 0; i < 200 && client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 25));
  expect(client.status).toBe('ready');
}

describe('private redis-server', () => {
  let redis: PrivateServer;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(() => redis?.destroy());

  it('is a server of its own, on another port than the shared one', async () => {
    expect(redis.port).not.toBe(6379);
    const client = redisClient(redis.url);
    try {
      await untilReady(client);
      await client.set('k', 'v');
      expect(await client.get('k')).toBe('v');
    } finally {
      client.disconnect();
    }
  });

  it('paused answers nothing, resumed answers again', async () => {
    const client = redisClient(redis.url);
    try {
      await untilReady(client);
      redis.pause();
      await expect(client.ping()).rejects.toThrow(/timed out/i);
      redis.resume();
      expect(await client.ping()).toBe('PONG');
    } finally {
      redis.resume();
      client.disconnect();
    }
  });

  it('killed refuses connections; started again it comes back empty on the same port', async () => {
    const client = redisClient(redis.url);
    try {
      await untilReady(client);
      await client.set('k', 'v');
      await redis.kill();
      expect(redis.running).toBe(false);
      await expect(client.ping()).rejects.toThrow();
      await redis.start();
      await untilReady(client);
      expect(await client.get('k')).toBeNull();
    } finally {
      client.disconnect();
    }
  });
});

describe('private PostgreSQL', () => {
  let pg: PrivateServer;
  beforeAll(async () => {
    pg = await startPrivatePostgres();
  });
  afterAll(() => pg?.destroy());

  it('keeps its data across a restart and across a kill', async () => {
    expect(pg.port).not.toBe(5432);
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await sql`create table t (n int)`;
      await sql`insert into t values (1)`;
      await pg.restart();
      await expect(sql`select n from t`).resolves.toEqual([{ n: 1 }]);
      await pg.kill();
      await expect(sql`select 1`).rejects.toThrow();
      await pg.start();
      await expect(sql`select n from t`).resolves.toEqual([{ n: 1 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('paused leaves a query hanging until it is resumed', async () => {
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await sql`select 1`;
      pg.pause();
      const query = sql`select 2 as n`.then((r) => r[0]);
      const outcome = await Promise.race([query, new Promise((r) => setTimeout(() => r('hanging'), 1000))]);
      expect(outcome).toBe('hanging');
      pg.resume();
      await expect(query).resolves.toEqual({ n: 2 });
    } finally {
      pg.resume();
      await sql.end({ timeout: 1 });
    }
  });
});

describe('private PostgreSQL with a password', () => {
  it('accepts the right password and refuses a wrong one', async () => {
    const pg = await startPrivatePostgres({ password: "s3cret'pw" });
    try {
      const good = postgres(pg.url, { max: 1, onnotice: () => {} });
      await expect(good`select 1 as n`).resolves.toEqual([{ n: 1 }]);
      await good.end();
      const url = new URL(pg.url);
      url.password = 'wrong';
      const bad = postgres(url.href, { max: 1, onnotice: () => {} });
      await expect(bad`select 1`).rejects.toThrow(/password authentication failed/);
      await bad.end();
    } finally {
      await pg.destroy();
    }
  });
});
