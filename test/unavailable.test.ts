// A DATABASE_URL or REDIS_URL that leads nowhere fails start-up with one line naming the variable
// and the cause, never the password, and within 10 s when the server never answers (issue 7,
// item 8). The servers are real: a port nobody listens on, a socket that accepts and stays
// silent, and private PostgreSQL and Redis servers that refuse the credentials.
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.ts';
import { createLimiters } from '../src/jobs/limiters.ts';
import { UnavailableError } from '../src/unavailable.ts';
import { type PrivateServer, startPrivatePostgres, startPrivateRedis } from './support/private-servers.ts';

/** The bound for a server that never answers. */
const NEVER_ANSWERS_BOUND_MS = 10_000;

/** A port that refuses connections: bound once, then closed. */
async function refusingPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Accepts connections and never writes a byte. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What a promise rejected with, and after how long. */
async function failure(work: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await work();
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
  throw new Error('expected a failure, got none');
}

const openUrl = (url: string) => () => openDatabase({ url }).then((d) => d.close());
const pingUrl = (url: string) => async () => {
  const limiters = createLimiters({ perUser: 1, queueMax: 1, redisUrl: url });
  try {
    await limiters.ping();
  } finally {
    await limiters.close();
  }
};

describe('DATABASE_URL that leads nowhere', () => {
  let pg: PrivateServer;
  const PASSWORD = 'pg-s3cret-pw';
  beforeAll(async () => {
    pg = await startPrivatePostgres({ password: PASSWORD });
  });
  afterAll(() => pg?.destroy());

  it('nothing listening: "connection refused", the driver error kept as cause', async () => {
    const port = await refusingPort();
    const { err } = await failure(openUrl(`postgres://bot:${PASSWORD}@127.0.0.1:${port}/hires`));
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toBe(
      `DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused)`,
    );
    expect((err as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a server that accepts and never answers: "timed out" within 10 s', async () => {
    const silent = await silentServer();
    try {
      const { err, ms } = await failure(openUrl(`postgres://bot@127.0.0.1:${silent.port}/hires`));
      expect((err as Error).message).toBe(
        `DATABASE_URL: cannot connect to 127.0.0.1:${silent.port} (timed out after 8 s)`,
      );
      expect(ms).toBeLessThan(NEVER_ANSWERS_BOUND_MS);
    } finally {
      await silent.close();
    }
  });

  it('a wrong password: "password authentication failed", and the password is not in the message', async () => {
    const url = new URL(pg.url);
    url.password = 'wrong-pw';
    const { err } = await failure(openUrl(url.href));
    expect((err as Error).message).toBe(
      `DATABASE_URL: cannot connect to 127.0.0.1:${pg.port} (password authentication failed)`,
    );
    expect((err as Error).message).not.toContain('wrong-pw');
  });

  it('a database that does not exist: its name, and not the password', async () => {
    const url = new URL(pg.url);
    url.pathname = '/nope';
    const { err } = await failure(openUrl(url.href));
    expect((err as Error).message).toBe(
      `DATABASE_URL: cannot connect to 127.0.0.1:${pg.port} (unknown database "nope")`,
    );
    expect((err as Error).message).not.toContain(PASSWORD);
  });

  it('a hung server (SIGSTOP): "timed out" within 10 s', async () => {
    pg.pause();
    try {
      const { err, ms } = await failure(openUrl(pg.url));
      expect((err as Error).message).toBe(
        `DATABASE_URL: cannot connect to 127.0.0.1:${pg.port} (timed out after 8 s)`,
      );
      expect(ms).toBeLessThan(NEVER_ANSWERS_BOUND_MS);
    } finally {
      pg.resume();
    }
  });
});

describe('REDIS_URL that leads nowhere', () => {
  let redis: PrivateServer;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', 'redis-s3cret');
    admin.disconnect();
  });
  afterAll(() => redis?.destroy());

  it('nothing listening, or a server that never answers: one line each, within 10 s', async () => {
    const port = await refusingPort();
    const silent = await silentServer();
    try {
      const [refused, hung] = await Promise.all([
        failure(pingUrl(`redis://127.0.0.1:${port}`)),
        failure(pingUrl(`redis://127.0.0.1:${silent.port}`)),
      ]);
      expect(refused.err).toBeInstanceOf(UnavailableError);
      expect((refused.err as Error).message).toBe(
        `REDIS_URL: cannot connect to 127.0.0.1:${port} (connection refused)`,
      );
      expect((hung.err as Error).message).toBe(
        `REDIS_URL: cannot connect to 127.0.0.1:${silent.port} (timed out after 8 s)`,
      );
      for (const f of [refused, hung]) expect(f.ms).toBeLessThan(NEVER_ANSWERS_BOUND_MS);
    } finally {
      await silent.close();
    }
  });

  it('a wrong password or none: said so at once, and the password is not in the message', async () => {
    const { err } = await failure(pingUrl(`redis://:wrong-pw@127.0.0.1:${redis.port}`));
    expect((err as Error).message).toBe(
      `REDIS_URL: cannot connect to 127.0.0.1:${redis.port} (password authentication failed)`,
    );
    expect((err as Error).message).not.toContain('wrong-pw');
    const none = await failure(pingUrl(`redis://127.0.0.1:${redis.port}`));
    expect((none.err as Error).message).toBe(
      `REDIS_URL: cannot connect to 127.0.0.1:${redis.port} (the server wants a password)`,
    );
  });

  it('the right password: ping answers', async () => {
    await expect(pingUrl(`redis://:redis-s3cret@127.0.0.1:${redis.port}`)()).resolves.toBeUndefined();
  });
});
