// Everything the bot runs besides Discord: database (migrated), engine worker, limiters, jobs.
import type { Config } from './config.ts';
import { type Database, openDatabase } from './db/client.ts';
import { resolveModelDir } from './diffusion/model-dir.ts';
import { EnginePool } from './engine/engine-pool.ts';
import { createLimiters, type Limiters } from './jobs/limiters.ts';
import { JobService } from './jobs/service.ts';
import type { Logger } from './log.ts';

export interface Services {
  database: Database;
  engine: EnginePool;
  limiters: Limiters;
  jobs: JobService;
  stop(): Promise<void>;
}

export async function startServices(config: Config, log: Logger): Promise<Services> {
  const model = resolveModelDir(config.model.dir);
  if (!model.ok) throw new Error(`no model folder in ${config.model.dir}`);
  const database = await openDatabase({ url: config.database.url, pgliteDir: config.database.pgliteDir });
  log.info({ database: database.kind }, 'database ready (migrations applied)');
  let engine: EnginePool | undefined;
  let limiters: Limiters | undefined;
  let jobs: JobService | undefined;
  const stop = async () => {
    await jobs?.stop();
    await limiters?.close();
    await engine?.close();
    await database.close();
  };
  try {
    // Redis before the model: a wrong REDIS_URL is reported in seconds, not after the load
    limiters = createLimiters({
      perUser: config.queue.perUser,
      queueMax: config.queue.max,
      redisUrl: config.redisUrl,
    });
    await limiters.ping();
    engine = await EnginePool.start(
      config.model.workers,
      {
        modelDir: model.dir,
        executionProviders: config.model.executionProviders,
        previewEvery: config.generation.previewEvery,
        timestepRounding: 'fp16',
      },
      { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    );
    log.info({ model: engine.model, workers: config.model.workers }, 'model loaded');
    jobs = new JobService({
      db: database.db,
      engine,
      limiters,
      quota: { dailyUnits: config.quota.dailyUnits, resetHourUtc: config.quota.resetHourUtc },
      concurrency: config.model.workers,
      retention: { latentDays: config.retention.latentDays },
      jobTimeoutMs: config.queue.jobTimeoutMs,
      limits: config.limits,
      log: {
        info: (o, m) => log.info(o, m),
        warn: (o, m) => log.warn(o, m),
        error: (o, m) => log.error(o, m),
      },
    });
    await jobs.start();
    return { database, engine, limiters, jobs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
