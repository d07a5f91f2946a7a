// A redis-server or PostgreSQL of a test's own: free port, temporary folder, and the four ways a
// server goes away (stop, kill, pause, restart), so outage tests never touch the shared servers.
//
//   const redis = await startPrivateRedis();   // redis.url
//   afterAll(() => redis.destroy());
//   redis.pause(); redis.resume(); await redis.kill(); await redis.start(); await redis.restart();
//
// A paused server keeps its sockets open and answers nothing (PostgreSQL's backends too); a killed
// one is gone at once; servers a test forgot are killed when the test process exits
// (server-process.ts).
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { type PrivateServer, privateDir, startServer } from './server-process.ts';

export type { PrivateServer };

/** The uid/gid to run PostgreSQL as: itself when not root, else the `postgres` account. */
function postgresAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!uid || !gid) throw new Error('running as root and there is no postgres account to run PostgreSQL as');
  return { uid: Number(uid), gid: Number(gid) };
}

// --- Redis -------------------------------------------------------------------------------------

/** A redis-server without persistence: a restart (or kill + start) comes back empty. */
export function startPrivateRedis(): Promise<PrivateServer> {
  const dir = privateDir('redis');
  return startServer(
    {
      name: 'redis',
      stopSignal: 'SIGTERM',
      url: (port) => `redis://127.0.0.1:${port}`,
      launch: (port) => ({
        command: 'redis-server',
        args: [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
        ],
        ready: /Ready to accept connections/,
      }),
    },
    dir,
  );
}

// --- PostgreSQL --------------------------------------------------------------------------------

function postgresBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) return path.join(root, versions[0], 'bin');
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (found.status === 0) return found.stdout.trim();
  throw new Error('no PostgreSQL binaries found: set PG_BIN to the folder holding initdb and postgres');
}

function chownTree(dir: string, account: { uid: number; gid: number } | undefined): void {
  if (!account) return;
  const r = spawnSync('chown', ['-R', `${account.uid}:${account.gid}`, dir]);
  if (r.status !== 0) throw new Error(`chown ${dir} failed: ${r.stderr}`);
}

/**
 * One initdb per machine, PostgreSQL build and user (a few seconds); each server copies it. Built
 * under a temporary name and renamed, so concurrent test processes never see half of one.
 */
function postgresTemplate(bin: string, account: ReturnType<typeof postgresAccount>): string {
  const template = path.join(
    tmpdir(),
    `hiresbot-pg-template-${bin.replace(/\W+/g, '_')}-${process.getuid?.()}`,
  );
  if (existsSync(path.join(template, 'data', 'PG_VERSION'))) return template;
  const building = mkdtempSync(`${template}.building-`);
  chownTree(building, account);
  const init = spawnSync(
    path.join(bin, 'initdb'),
    [
      '-D',
      path.join(building, 'data'),
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-locale',
      '--no-sync',
    ],
    { encoding: 'utf8', ...(account ?? {}) },
  );
  if (init.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.error ?? init.stderr}`);
  }
  try {
    renameSync(building, template);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another process finished first
  }
  return template;
}

export interface PrivatePostgresOptions {
  /** Require this password over TCP (scram-sha-256) instead of trusting every connection. */
  password?: string;
}

/** A PostgreSQL cluster of its own; `url` points at its `postgres` database as superuser `postgres`. */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivateServer> {
  const bin = postgresBin();
  const account = postgresAccount();
  const template = postgresTemplate(bin, account);
  const dir = privateDir('pg');
  const data = path.join(dir, 'data');
  const copy = spawnSync('cp', ['-a', path.join(template, 'data'), data], { encoding: 'utf8' });
  if (copy.status !== 0) throw new Error(`copying the PostgreSQL template failed: ${copy.stderr}`);
  if (options.password) {
    writeFileSync(
      path.join(data, 'pg_hba.conf'),
      'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n',
    );
  }
  chownTree(dir, account);
  const auth = options.password ? `postgres:${encodeURIComponent(options.password)}` : 'postgres';
  return startServer(
    {
      name: 'postgres',
      stopSignal: 'SIGINT', // fast shutdown: disconnect clients, no waiting for them
      url: (port) => `postgres://${auth}@127.0.0.1:${port}/postgres`,
      launch: (port) => ({
        command: path.join(bin, 'postgres'),
        // no fsync: a throw-away cluster need not survive the host, and fsync costs seconds on a
        // shared disk; but commits stay synchronous, so a killed server keeps what it committed
        // (as a crashed production server does) and outage tests see real recovery
        args: [
          '-D',
          data,
          '-p',
          String(port),
          '-k',
          dir,
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          'fsync=off',
          '-c',
          'full_page_writes=off',
          '-c',
          'shared_buffers=16MB',
          '-c',
          'max_connections=40',
        ],
        ready: /database system is ready to accept connections/,
        account,
      }),
      async afterFirstStart(port) {
        if (!options.password) return;
        // the Unix socket is trusted: set the password there
        const sql = postgres({
          host: dir,
          port,
          user: 'postgres',
          database: 'postgres',
          max: 1,
          onnotice: () => {},
        });
        try {
          await sql.unsafe(`alter role postgres password '${options.password.replaceAll("'", "''")}'`);
        } finally {
          await sql.end();
        }
      },
    },
    dir,
  );
}
