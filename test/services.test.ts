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
import { startServices } from '../src/services.ts';
import { freshDatabase } from './support/databases.ts';
import { writeTinyModel } from './support/tiny-model.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-services-'));
writeTinyModel(path.join(work, 'models', 'tiny-sd'), { layout: 'optimum' });
afterAll(() => rmSync(work, { recursive: true, force: true }));

const log = createLogger({ level: 'silent' });

async function runOneJob(env: Record<string, string>) {
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
    // the hourly sweep, as its timer runs it: on PGlite it vacuums (PostgreSQL's autovacuum does)
    await services.jobs.sweep();
    const [stats] = rowsOf<{ vacuumed: Date | string | null }>(
      await services.database.db.execute(
        sql`select last_vacuum as vacuumed from pg_stat_user_tables where relname = 'job_latents'`,
      ),
    );
    return { done: result, vacuumed: stats?.vacuumed ?? null };
  } finally {
    await services.stop();
  }
}

describe('startServices', () => {
  it('with defaults: PGlite in a folder, migrations applied, the model folder found under models/', async () => {
    const { done, vacuumed } = await runOneJob({ PGLITE_DIR: path.join(work, 'data', 'pglite') });
    expect(done).toMatchObject({ type: 'done' });
    expect(vacuumed).not.toBeNull();
  });

  it('scaled out: PostgreSQL from DATABASE_URL and limits in Redis from REDIS_URL', async () => {
    const t = await freshDatabase('postgres');
    await t.close();
    try {
      const url = 'url' in t.location ? t.location.url : '';
      const { done } = await runOneJob({
        DATABASE_URL: url,
        REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      });
      expect(done).toMatchObject({ type: 'done' });
    } finally {
      await t.destroy();
    }
  });
});
