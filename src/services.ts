// Everything the bot runs besides the Discord client: database (migrated), engine workers,
// limiters, jobs, and the front end's view of them (made before the jobs start, so that jobs a
// restart takes over wait for the bot to follow them).
import path from 'node:path';
import { modelFolder } from './checkpoint/model-folder.ts';
import type { Config } from './config.ts';
import { type Database, openDatabase } from './db/client.ts';
import { resolveModelDir } from './diffusion/model-dir.ts';
import { DEFAULT_REQUEST, hiresSize } from './diffusion/request.ts';
import { createBackend } from './discord/backend.ts';
import type { FrontEndServices } from './discord/services.ts';
import { EnginePool } from './engine/engine-pool.ts';
import { createLimiters, type Limiters } from './jobs/limiters.ts';
import { JobService } from './jobs/service.ts';
import type { Logger } from './log.ts';

export interface Services {
  database: Database;
  engine: EnginePool;
  limiters: Limiters;
  jobs: JobService;
  frontEnd: FrontEndServices;
  stop(): Promise<void>;
}

/** The latent shapes of a job with the default size: its base pass and its hires pass. */
function defaultShapes(): { height: number; width: number }[] {
  const hires = hiresSize(DEFAULT_REQUEST);
  return [
    { height: DEFAULT_REQUEST.height / 8, width: DEFAULT_REQUEST.width / 8 },
    { height: hires.height / 8, width: hires.width / 8 },
  ];
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
      log,
    });
    await limiters.ping();
    // a checkpoint file is imported once, before the engines load what the import wrote
    const modelDir = await modelFolder(model, {
      vae: config.model.vae,
      dtype: config.model.dtype,
      executionProviders: config.model.executionProviders,
      cacheDir: config.model.cacheDir,
      progress: process.stderr,
      log: (m) => log.info(m),
    });
    engine = await EnginePool.start(
      config.model.workers,
      {
        modelDir,
        executionProviders: config.model.executionProviders,
        previewEvery: config.generation.previewEvery,
        timestepRounding: 'fp16',
        ...(config.model.warmUp ? { warmUp: defaultShapes() } : {}),
        // the second start loads onnxruntime's optimised graphs instead of optimising again
        optimizedDir: path.join(config.model.cacheDir, '.optimized'),
      },
      { info: (m) => log.info(m), warn: (m) => log.warn(m) },
      { deviceIds: config.model.deviceIds },
    );
    log.info({ model: engine.model, workers: config.model.workers }, 'model loaded');
    const quota = { dailyUnits: config.quota.dailyUnits, resetHourUtc: config.quota.resetHourUtc };
    jobs = new JobService({
      db: database.db,
      engine,
      limiters,
      quota,
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
    const loaded = engine.model;
    const frontEnd = createBackend({
      config,
      db: database.db,
      jobs,
      quota,
      model: () => ({ name: loaded.name, hash: loaded.hash, oldHash: loaded.oldHash, vae: loaded.vae }),
    });
    await jobs.start();
    return { database, engine, limiters, jobs, frontEnd, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
