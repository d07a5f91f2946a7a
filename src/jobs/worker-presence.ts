/**
 * A worker telling the others it is up: its row in worker_models (with the model it loaded) is
 * written as it starts, refreshed every heartbeat, and deleted when it stops cleanly, so that a
 * gateway can tell a live worker from one that crashed (silent past the staleness bound) or left.
 */
import type { Db } from '../db/client.ts';
import { answered } from './db-deadline.ts';
import { STALE_MS } from './recovery.ts';
import type { JobServiceLog } from './types.ts';
import {
  forgetDeadWorkers,
  type ModelInfo,
  publishWorkerModel,
  removeWorker,
  workersWithOtherModels,
} from './worker-models.ts';

export interface WorkerPresenceOptions {
  db: Db;
  instanceId: string;
  model: ModelInfo;
  log: JobServiceLog;
  /** How often seen_at is refreshed; undefined: never (nobody else reads this database). */
  everyMs: number | undefined;
  /** How long a silent worker still counts as up (for the check that all run one model). */
  staleMs?: number;
}

export interface WorkerPresence {
  /** Refreshes seen_at now, as the timer does. */
  beat(): Promise<void>;
  /** Stops refreshing and deletes the row: gateways see this worker gone at once. */
  stop(): Promise<void>;
}

/** How long a stop waits for the database to take the row away (else it goes stale). */
const STOP_ANSWER_MS = 3_000;

export async function startWorkerPresence(o: WorkerPresenceOptions): Promise<WorkerPresence> {
  const { db, instanceId, model, log } = o;
  await publishWorkerModel(db, instanceId, model);
  forgetDeadWorkers(db).catch((err) => log.warn({ err }, 'could not forget long-dead workers'));
  await warnOfOtherModels(o).catch((err) => log.warn({ err }, 'could not compare the workers’ models'));
  let failing = false;
  let inFlight: Promise<void> | undefined;
  let stopped = false;
  const beat = (): Promise<void> => {
    // a beat still waiting (an outage) is not doubled; none after stop, or the row comes back
    if (stopped) return Promise.resolve();
    inFlight ??= publishWorkerModel(db, instanceId, model)
      .then(
        () => {
          if (failing) log.info({}, 'this worker’s liveness is written again');
          failing = false;
        },
        (err: unknown) => {
          // once per outage: gateways will report this worker gone until it is written again
          if (!failing) log.warn({ err }, 'could not write this worker’s liveness; retrying');
          failing = true;
        },
      )
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  const timer = o.everyMs === undefined ? undefined : setInterval(() => void beat(), o.everyMs);
  timer?.unref();
  return {
    beat,
    async stop() {
      stopped = true;
      clearInterval(timer);
      try {
        // a beat still waiting goes first (it would bring the row back), within the same bound:
        // a hung database must not hold the stop (and the jobs handed back after it) for ever
        const removing = (async () => {
          await inFlight;
          await removeWorker(db, instanceId);
        })();
        await answered('removing this worker', removing, STOP_ANSWER_MS);
      } catch (err) {
        log.warn({ err }, 'could not remove this worker’s row; it counts as gone once stale');
      }
    },
  };
}

/**
 * Any worker takes any job, so workers with different models draw one seed differently (and a
 * reroll may land on either): said loudly at start, naming both, for the admin to fix.
 */
async function warnOfOtherModels(o: WorkerPresenceOptions): Promise<void> {
  const others = await workersWithOtherModels(o.db, o.instanceId, o.model.hash, o.staleMs ?? STALE_MS);
  if (others.length === 0) return;
  o.log.warn(
    {
      model: `${o.model.name} [${o.model.hash}]`,
      others: others.map((w) => `${w.instanceId}: ${w.model.name} [${w.model.hash}]`),
    },
    'other GPU workers run a different model: any worker takes any job, so the same seed and settings give different pictures depending on which one draws it; run the same model on every worker',
  );
}
