// The bot's non-Discord half as `npm start` wires it, from settings alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/client.ts';
import { DEFAULT_REQUEST } from '../src/diffusion/request.ts';
import { createLogger } from '../src/log.ts';
import { type Services, startServices } from '../src/services.ts';
import { freshDatabase, lastAnalyzed, lastCheckpoint } from './support/databases.ts';
import { until } from './support/job-service.ts';
import { writeTinyModel } from './support/tiny-model.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-services-'));
writeTinyModel(path.join(work, 'models', 'tiny-sd'), { layout: 'optimum' });
afterAll(() => rmSync(work, { recursive: true, force: true }));

const log = createLogger({ level: 'silent' });

async function runOneJob(env: Record<string, string>, whileUp?: (services: Services) => Promise<void>) {
  const services = await startServices(loadConfig({ MODEL_DIR: path.join(work, 'models'), ...env }), log);
  try {
    const done = new Promise((resolve) => services.jobs.on((e) => e.type === 'done' && resolve(e)));
    await services.jobs.submit({
      kind: 'imagine',
      guildId: 'g',
      channelId: 'c',
      userId: 'u',
      request: { ...DEFAULT_REQUEST, prompt: 'x', seed: 3, width: 64, height: 64, steps: 3 },
    });
    const result = await done;
    await whileUp?.(services);
    return result;
  } finally {
    await services.stop();
  }
}

describe('startServices', () => {
  it('with defaults: PGlite in a folder, migrations applied, the model folder found under models/', async () => {
    const pgliteDir = path.join(work, 'data', 'pglite');
    // a folder an older bot left: 100 finished jobs, never analyzed (PGlite has no autovacuum)
    const before = await openDatabase({ pgliteDir });
    await before.db.execute(sql`
      insert into jobs (id, kind, guild_id, channel_id, user_id, request, denoises, seed, cost, status)
      select 'old-' || i, 'imagine', 'g', 'c', 'u', '{}'::jsonb, '[0.5]'::jsonb, i, 1, 'done'
      from generate_series(1, 100) i`);
    await before.close();
    const done = await runOneJob({ PGLITE_DIR: pgliteDir }, async (services) => {
      // the upkeep run in the background at start gave the planner its statistics
      await until(async () => (await lastAnalyzed(services.database.db, 'jobs')) !== null, 10_000);
      // the hourly sweep, as its timer runs it, keeps the database up again
      const checkpoint = await lastCheckpoint(services.database.db);
      await services.jobs.sweep();
      expect(await lastCheckpoint(services.database.db)).not.toBe(checkpoint);
    });
    expect(done).toMatchObject({ type: 'done' });
  });

  it('scaled out: PostgreSQL from DATABASE_URL and limits in Redis from REDIS_URL', async () => {
    const t = await freshDatabase('postgres');
    await t.close();
    try {
      const url = 'url' in t.location ? t.location.url : '';
      const done = await runOneJob({
        DATABASE_URL: url,
        REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      });
      expect(done).toMatchObject({ type: 'done' });
    } finally {
      await t.destroy();
    }
  });
});
