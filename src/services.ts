// Everything the bot runs besides the Discord client: database (migrated), engine workers,
// limiters, jobs, and the front end's view of them (made before the jobs start, so that jobs a
// restart takes over wait for the bot to follow them). PROCESS_ROLE picks the parts: a gateway
// loads no model and runs no job; a worker runs jobs from the shared queue.
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
import { HEARTBEAT_MS, STALE_MS } from './jobs/recovery.ts';
import { JobService } from './jobs/service.ts';
import { latestWorkerModel, type ModelInfo } from './jobs/worker-models.ts';
import { startWorkerPresence } from './jobs/worker-presence.ts';
import { startWorkerWatch, type WorkerWatch } from './jobs/worker-watch.ts';
import type { Logger } from './log.ts';

export interface Services {
  database: Database;
  /** Absent in a gateway. */
  engine: EnginePool | undefined;
  limiters: Limiters;
  jobs: JobService;
  frontEnd: FrontEndServices;
  /**
   * `beforeClose` runs once the jobs have stopped, while the database is still open: the front
   * end delivers the results that are ready and records their messages. Stops once: a second call
   * (a stop signal beside a failed start) waits for the first.
   */
  stop(o?: { beforeClose?: () => Promise<void> }): Promise<void>;
}

/** The latent shapes of a job with the default size: its base pass and its hires pass. */
function defaultShapes(): { height: number; width: number }[] {
  const hires = hiresSize(DEFAULT_REQUEST);
  return [
    { height: DEFAULT_REQUEST.height / 8, width: DEFAULT_REQUEST.width / 8 },
    { height: hires.height / 8, width: hires.width / 8 },
  ];
}

/**
 * `stop`: aborted by a stop signal during the start; the steps still to come (the model's load,
 * jobs' recovery) are then not begun, and what got up is stopped.
 */
export async function startServices(
  config: Config,
  log: Logger,
  o: { stop?: AbortSignal } = {},
): Promise<Services> {
  const runsJobs = config.role !== 'gateway';
  const model = resolveModelDir(config.model.dir);
  if (runsJobs && !model.ok) throw new Error(`no model folder in ${config.model.dir}`);
  const database = await openDatabase({ url: config.database.url, pgliteDir: config.database.pgliteDir });
  log.info({ database: database.kind }, 'database ready (migrations applied)');
  let engine: EnginePool | undefined;
  let limiters: Limiters | undefined;
  let jobs: JobService | undefined;
  let workers: Workers | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (o: { beforeClose?: () => Promise<void> } = {}) => {
    stopped ??= (async () => {
      // a worker's row goes first: gateways stop counting on it while its jobs are handed back
      await workers?.stop();
      await jobs?.stop();
      await o.beforeClose?.();
      await limiters?.close();
      await engine?.close();
      await database.close();
    })();
    return stopped;
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
    o.stop?.throwIfAborted();
    if (runsJobs && model.ok) engine = await startEngine(config, log, model);
    // a load may take a minute: a stop meanwhile must not see jobs recovered (and claimed) first
    o.stop?.throwIfAborted();
    const quota = { dailyUnits: config.quota.dailyUnits, resetHourUtc: config.quota.resetHourUtc };
    jobs = new JobService({
      db: database.db,
      ...(engine ? { engine } : {}),
      limiters,
      quota,
      concurrency: engine ? config.model.workers : 0,
      listen: database.listen,
      retention: {
        latentDays: config.retention.latentDays,
        ...(database.maintenance ? { maintenance: database.maintenance } : {}),
      },
      jobTimeoutMs: config.queue.jobTimeoutMs,
      limits: config.limits,
      // the front end (createBackend, below) records every delivery
      redrawUndelivered: true,
      log: {
        info: (o, m) => log.info(o, m),
        warn: (o, m) => log.warn(o, m),
        error: (o, m) => log.error(o, m),
      },
    });
    workers = await workersOf(database, engine, jobs.instanceId, log);
    const frontEnd = createBackend({
      config,
      db: database.db,
      jobs,
      quota,
      model: workers.model,
      ...(workers.watch ? { workers: workers.watch } : {}),
    });
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

interface Workers {
  /** The model the infotexts name. */
  model: () => ModelInfo;
  /** A gateway's view of the live workers (absent where this process runs the jobs). */
  watch?: WorkerWatch;
  stop(): Promise<void>;
}

/**
 * This process and the GPU workers. One that runs jobs is a worker: it says so in the database
 * with the model it loaded, refreshed with its heartbeat where other processes share the database
 * (never on PGlite: nobody else reads it), and names its own model. A gateway reads what the
 * workers loaded, every 2 s until one has, then every minute, and watches whether any is live.
 */
async function workersOf(
  database: Database,
  engine: EnginePool | undefined,
  instanceId: string,
  log: Logger,
): Promise<Workers> {
  const { db } = database;
  if (engine) {
    const { name, hash, oldHash, vae } = engine.model;
    const loaded = { name, hash, oldHash, vae };
    const everyMs = database.kind === 'postgres' ? HEARTBEAT_MS : undefined;
    const presence = await startWorkerPresence({ db, instanceId, model: loaded, log, everyMs });
    return { model: () => loaded, stop: () => presence.stop() };
  }
  const unknown: ModelInfo = { name: 'unknown (no worker has started yet)', hash: '' };
  let known = unknown;
  const read = () =>
    latestWorkerModel(db, STALE_MS).then(
      (m) => {
        if (m) known = m;
      },
      (err: unknown) => log.warn({ err }, 'could not read the workers’ model'),
    );
  await read();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const poll = () => {
    if (!stopped)
      timer = setTimeout(() => void read().finally(poll), known === unknown ? 2_000 : 60_000).unref();
  };
  poll();
  const watch = await startWorkerWatch({ db, log, staleMs: STALE_MS, everyMs: HEARTBEAT_MS });
  return {
    model: () => known,
    watch,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await watch.stop();
    },
  };
}
