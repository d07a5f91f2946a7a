// The bot's non-Discord half as `npm start` wires it, from settings alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { rowsOf } from '../src/db/client.ts';
import { DEFAULT_REQUEST } from '../src/diffusion/request.ts';
import { createLogger } from '../src/log.ts';
import { type Services, startServices } from '../src/services.ts';
import { freshDatabase } from './support/databases.ts';
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

/** When `table` was last vacuumed or analyzed by hand (PGlite has no autovacuum to do it). */
async function lastUpkeep(services: Services, table: string) {
  const [row] = rowsOf<{ vacuumed: unknown; analyzed: unknown }>(
    await services.database.db.execute(
      sql`select last_vacuum::text as vacuumed, last_analyze::text as analyzed
          from pg_stat_user_tables where relname = ${table}`,
    ),
  );
  return { vacuumed: row?.vacuumed ?? null, analyzed: row?.analyzed ?? null };
}

describe('startServices', () => {
  it('with defaults: PGlite in a folder, migrations applied, the model folder found under models/', async () => {
    const done = await runOneJob({ PGLITE_DIR: path.join(work, 'data', 'pglite') }, async (services) => {
      // the upkeep run in the background at start: statistics without waiting for the hourly sweep
      await until(async () => (await lastUpkeep(services, 'jobs')).analyzed !== null, 10_000);
      const before = await lastUpkeep(services, 'job_latents');
      // the hourly sweep, as its timer runs it, vacuums again
      await services.jobs.sweep();
      expect((await lastUpkeep(services, 'job_latents')).vacuumed).not.toEqual(before.vacuumed);
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
