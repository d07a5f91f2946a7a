import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { secretsOf } from '../src/config-secrets.ts';
import { openDatabase } from '../src/db/client.ts';
import { jobs } from '../src/db/schema.ts';
import { DEFAULT_REQUEST } from '../src/diffusion/request.ts';
import { createLogger } from '../src/log.ts';
import { UserError } from '../src/user-error.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, stream: stream as unknown as NodeJS.WritableStream & { write(s: string): boolean } };
}

const TOKEN = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.s3cr3t_T0k3n-value_xyz';
const DB_PASSWORD = 'pa:ss/w"rd';
const config = loadConfig({
  DISCORD_TOKEN: TOKEN,
  DATABASE_URL: `postgres://bot:${encodeURIComponent(DB_PASSWORD)}@db.example:5432/hires`,
});

describe('createLogger', () => {
  it('never writes the bot token or the database password, wherever they appear', () => {
    const out = capture();
    const log = createLogger({ secrets: secretsOf(config), destination: out.stream });
    log.info({ token: TOKEN }, 'token field');
    log.info({ discord: { token: TOKEN } }, 'nested token field');
    log.info(`message that mentions ${TOKEN} inline`);
    log.info({ url: config.database.url }, 'connection string');
    log.info({ detail: `raw password ${DB_PASSWORD}` }, 'raw password (JSON-escaped on the way out)');
    log.error(new Error(`login failed for ${TOKEN}`), 'error with secret in message and stack');
    const all = out.lines.join('');
    expect(out.lines).toHaveLength(6);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('s3cr3t');
    expect(all).not.toContain(encodeURIComponent(DB_PASSWORD));
    expect(all).not.toContain(JSON.stringify(DB_PASSWORD).slice(1, -1));
    expect(all.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(7);
  });

  it('keeps the rest of the line intact and valid JSON', () => {
    const out = capture();
    const log = createLogger({ secrets: secretsOf(config), destination: out.stream });
    log.info({ url: config.database.url, jobId: 7 }, 'connecting');
    const line = JSON.parse(out.lines[0] ?? '{}');
    expect(line.url).toBe('postgres://bot:[REDACTED]@db.example:5432/hires');
    expect(line.jobId).toBe(7);
    expect(line.msg).toBe('connecting');
  });

  it('redacts token fields even when no secret values are known', () => {
    const out = capture();
    createLogger({ destination: out.stream }).info({ token: 'whatever' }, 'x');
    expect(JSON.parse(out.lines[0] ?? '{}').token).toBe('[REDACTED]');
  });

  it('redacts a job’s Discord interaction token wherever the job row is logged', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    log.info({ job: { id: 'j1', interactionToken: 'aW50ZXJhY3Rpb24' } }, 'job');
    log.info({ event: { job: { interactionToken: 'aW50ZXJhY3Rpb24' } } }, 'event');
    expect(out.lines.join('')).not.toContain('aW50ZXJhY3Rpb24');
    expect(JSON.parse(out.lines[0] ?? '{}').job).toEqual({ id: 'j1', interactionToken: '[REDACTED]' });
  });
});

/** Shaped like Discord's: base64 of "interaction:<id>:<alphanumeric secret>". */
function interactionToken(): string {
  const secret = randomBytes(48).toString('hex');
  return Buffer.from(`interaction:1234567890123456789:${secret}`).toString('base64').replace(/=+$/, '');
}

describe('interaction tokens and failed queries in the log', () => {
  it('logs a failed insert as its cause and SQL text, never its parameters, however deep in the chain', async () => {
    const database = await openDatabase({ pgliteDir: 'memory://' });
    const token = interactionToken();
    const row = {
      id: 'job-1',
      kind: 'imagine' as const,
      guildId: 'g',
      channelId: 'c',
      userId: 'u',
      request: { ...DEFAULT_REQUEST, seed: 1, prompt: 'prompt-that-is-a-parameter' },
      denoises: [0.5],
      seed: 1,
      cost: 1,
      interactionToken: token,
    };
    let failure: unknown;
    try {
      await database.db.insert(jobs).values(row);
      await database.db.insert(jobs).values(row); // same id: a real duplicate-key failure
    } catch (err) {
      failure = err;
    } finally {
      await database.close();
    }
    expect((failure as Error).message).toContain(token); // what drizzle would have logged

    const out = capture();
    const log = createLogger({ destination: out.stream });
    log.error({ err: failure }, 'could not record a new job');
    log.error(
      {
        err: new UserError(
          'unavailable',
          'The database did not answer.',
          { service: 'database' },
          { cause: failure },
        ),
      },
      'wrapped',
    );
    const all = out.lines.join('');
    expect(all).not.toContain(token);
    expect(all).not.toContain('prompt-that-is-a-parameter');
    expect(all).not.toContain('params');
    const err = JSON.parse(out.lines[0] ?? '{}').err;
    expect(err).toMatchObject({
      type: 'DrizzleQueryError',
      message: 'duplicate key value violates unique constraint "jobs_pkey"',
      code: '23505',
    });
    expect(err.query).toMatch(/^insert into "jobs" \(.*\) values \(\$1, /);
    expect(err.stack).toMatch(/^DrizzleQueryError: duplicate key value[^\n]*\n\s+at /);
    expect(JSON.parse(out.lines[1] ?? '{}').err.cause).toMatchObject({
      type: 'DrizzleQueryError',
      code: '23505',
    });
  });

  it('scrubs anything shaped like an interaction token from every line, and leaves hashes and ids', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    const token = interactionToken();
    const unprefixed = randomBytes(60).toString('base64url').replace(/^/, 'Ab9');
    const sha256 = 'a'.repeat(8) + randomBytes(28).toString('hex');
    log.warn(`PATCH https://discord.com/api/v10/webhooks/42/${token}/messages/@original failed`);
    log.warn({ url: `/webhooks/42/${encodeURIComponent(token)}`, other: unprefixed }, 'retry');
    log.info({ model: sha256, jobId: 'mfx3k2a1b2c3d4e5' }, 'loaded');
    const all = out.lines.join('');
    expect(all).not.toContain(token.slice(16, 60));
    expect(all).not.toContain(unprefixed.slice(0, 40));
    expect(JSON.parse(out.lines[0] ?? '{}').msg).toBe(
      'PATCH https://discord.com/api/v10/webhooks/42/[REDACTED]/messages/@original failed',
    );
    expect(JSON.parse(out.lines[2] ?? '{}')).toMatchObject({ model: sha256, jobId: 'mfx3k2a1b2c3d4e5' });
  });
});

describe('the log on stdout', () => {
  const root = path.resolve(import.meta.dirname, '..');
  const tsx = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const logChild = path.join(root, 'test', 'support', 'log-child.ts');
  /** The `msg` of each JSON line a child wrote. */
  const messagesOf = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).msg as string);

  it('has every line out, in order, before the process exits, as the bot after "stopped"', async () => {
    // An exit with a write still in flight put the lines queued behind it out first, or lost it:
    // a stopped bot's last line was not "stopped" (3 runs in 20, before flushLogs).
    const runs = await Promise.all(
      Array.from({ length: 16 }, (_, run) =>
        promisify(execFile)(process.execPath, ['--import', tsx, logChild, String(run % 4)]).then(
          ({ stdout }) => ({ run, msgs: messagesOf(stdout) }),
        ),
      ),
    );
    for (const { run, msgs } of runs)
      expect(msgs, `run ${run}`).toEqual([...Array(run % 4).fill('line'), 'stopped']);
  }, 60_000);

  it('never holds the process up while the reader of its output has stopped reading', async () => {
    // 2000 lines of 200 characters fill the pipe (64 KB) many times over while nothing reads it
    // for 2 s: written synchronously, every timer of the process waited those 2 s
    const child = spawn(process.execPath, ['--import', tsx, logChild, '0', '2000'], {
      env: { ...process.env, FLOOD_WAIT_MS: '3000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.pause();
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    await new Promise((r) => setTimeout(r, 2_000));
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stdout.resume();
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(0);
    const { longestTimerWaitMs } = JSON.parse(stderr.trim().split('\n').at(-1) ?? '{}');
    expect(longestTimerWaitMs).toBeLessThan(1_000);
    // and nothing was lost meanwhile
    expect(messagesOf(stdout)).toEqual([...Array(2000).fill('flood'), 'stopped']);
  }, 60_000);
});
