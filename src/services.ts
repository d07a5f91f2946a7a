// Everything the bot runs besides the Discord client: database (migrated), engine workers,
// limiters, jobs, and the front end's view of them (made before the jobs start, so that jobs a
// restart takes over wait for the bot to follow them). PROCESS_ROLE picks the parts: a gateway
// loads no model and runs no job; a worker runs jobs from the shared queue.
import path from 'node:path';
import { modelFolder } from './checkpoint/model-folder.ts';
import type { Config } from './config.ts';
import { type Database, type Db, openDatabase } from './db/client.ts';
import { resolveModelDir } from './diffusion/model-dir.ts';
import { DEFAULT_REQUEST, hiresSize } from './diffusion/request.ts';
import { createBackend } from './discord/backend.ts';
import type { FrontEndServices } from './discord/services.ts';
import { EnginePool } from './engine/engine-pool.ts';
import { createLimiters, type Limiters } from './jobs/limiters.ts';
import { JobService } from './jobs/service.ts';
import { latestWorkerModel, type ModelInfo, publishWorkerModel } from './jobs/worker-models.ts';
import type { Logger } from './log.ts';

export interface Services {
  database: Database;
  /** Absent in a gateway. */
  engine: EnginePool | undefined;
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
  const runsJobs = config.role !== 'gateway';
  const model = resolveModelDir(config.model.dir);
  if (runsJobs && !model.ok) throw new Error(`no model folder in ${config.model.dir}`);
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
      namespace: config.redisPrefix,
      log,
    });
    await limiters.ping();
    if (runsJobs && model.ok) engine = await startEngine(config, log, model);
    const quota = { dailyUnits: config.quota.dailyUnits, resetHourUtc: config.quota.resetHourUtc };
    jobs = new JobService({
      db: database.db,
      ...(engine ? { engine } : {}),
      limiters,
      quota,
      concurrency: engine ? config.model.workers : 0,
      listen: database.listen,
      retention: { latentDays: config.retention.latentDays },
      jobTimeoutMs: config.queue.jobTimeoutMs,
      limits: config.limits,
      log: {
        info: (o, m) => log.info(o, m),
        warn: (o, m) => log.warn(o, m),
        error: (o, m) => log.error(o, m),
      },
    });
    const modelInfo = await modelOf(database.db, engine, jobs.instanceId, log);
    const frontEnd = createBackend({ config, db: database.db, jobs, quota, model: modelInfo });
    await jobs.start();
    log.info({ role: config.role, instance: jobs.instanceId }, 'jobs ready');
    return { database, engine, limiters, jobs, frontEnd, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startEngine(
  config: Config,
  log: Logger,
  model: Extract<ReturnType<typeof resolveModelDir>, { ok: true }>,
): Promise<EnginePool> {
  // a checkpoint file is imported once, before the engines load what the import wrote
  const modelDir = await modelFolder(model, {
    vae: config.model.vae,
    dtype: config.model.dtype,
    executionProviders: config.model.executionProviders,
    cacheDir: config.model.cacheDir,
    progress: process.stderr,
    log: (m) => log.info(m),
  });
  const engine = await EnginePool.start(
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
  return engine;
}

/**
 * The model the infotexts name: the one loaded here (a worker also tells the database, for the
 * gateway); a gateway reads what the workers loaded, every 2 s until one has, then every minute.
 */
async function modelOf(
  db: Db,
  engine: EnginePool | undefined,
  instanceId: string,
  log: Logger,
): Promise<() => ModelInfo> {
  if (engine) {
    const { name, hash, oldHash, vae } = engine.model;
    const loaded = { name, hash, oldHash, vae };
    await publishWorkerModel(db, instanceId, loaded);
    return () => loaded;
  }
  const unknown: ModelInfo = { name: 'unknown (no worker has started yet)', hash: '' };
  let known = unknown;
  const read = () =>
    latestWorkerModel(db).then(
      (m) => {
        if (m) known = m;
      },
      (err: unknown) => log.warn({ err }, 'could not read the workers’ model'),
    );
  await read();
  // every 2 s until a worker has said, then every minute
  const poll = () => setTimeout(() => void read().finally(poll), known === unknown ? 2_000 : 60_000).unref();
  poll();
  return () => known;
}
