import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig, secretsOf } from '../src/config.ts';
import { createLogger } from '../src/log.ts';

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
