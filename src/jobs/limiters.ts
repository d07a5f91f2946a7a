/**
 * Bottleneck behind our own small interface. Admission gates count a job from enqueue until it
 * finishes: one per user (USER_MAX_JOBS) and one for the whole queue (QUEUE_MAX). With a Redis
 * URL they are Bottleneck clusters, shared by every bot process. How many jobs run at once is not
 * decided here but by the job service's dispatch (one job per engine). Slots die with their
 * process while its jobs live on in the database: the count there (admission.ts) holds the
 * limits for those.
 *
 * A gate answers within seconds whatever Redis does: a slot, a refusal (undefined), or a
 * UserError 'unavailable' when Redis failed or did not answer, so a refusal and an outage never
 * look alike. After an outage, a flush or a Redis restart the gates work again by themselves.
 *
 * Slots held by a bot process that died (or that Redis has not heard from for `deadAfterMs`)
 * are freed by the reaper (reaper.ts): when a gate is refused it reaps that limiter and tries
 * once more, and the queue limiter is reaped every `reapEveryMs` besides.
 */
import Bottleneck from 'bottleneck';
import './bottleneck-yield.ts';
import { UserError } from '../user-error.ts';
import { LimiterPool } from './limiter-pool.ts';
import { clientIdOf, Reaper, type ReaperLog } from './reaper.ts';
import { type AdmissionRedis, connectAdmissionRedis, resendLostReleases } from './redis-connection.ts';

export interface Slot {
  release(): void;
}

export interface AdmissionGate {
  /** Slots per key. */
  readonly limit: number;
  /**
   * Takes one slot for `key`, or returns undefined when all are held (never waits). Throws a
   * UserError 'unavailable' (the cause attached) when the shared store fails or does not answer.
   */
  tryAcquire(key: string): Promise<Slot | undefined>;
  /** Slots held for `key`, across the cluster; throws like tryAcquire. */
  held(key: string): Promise<number>;
}

export interface LimiterSettings {
  perUser: number;
  queueMax: number;
  redisUrl?: string | undefined;
  /** Prefix of the Bottleneck ids, so that separate deployments on one Redis do not mix. */
  namespace?: string;
  /** A user's limiter is dropped this long after their last slot is released (default 15 min). */
  idleMs?: number;
  /** A gate call still unanswered after this long fails as 'unavailable' (default 5 s). */
  answerTimeoutMs?: number;
  /**
   * Slots of a bot process Redis has not heard from for this long are freed (default 20 s); at
   * least 3 heartbeats. See DEAD_AFTER_MS.
   */
  deadAfterMs?: number;
  /** How often each limiter tells Redis it is alive (Bottleneck's heartbeatInterval, default 5 s). */
  heartbeatMs?: number;
  /** How often the queue limiter is reaped without a refusal (default 1 min); Infinity: never. */
  reapEveryMs?: number;
  /** Where freed slots of dead processes are reported. */
  log?: ReaperLog;
}

export interface Limiters {
  users: AdmissionGate;
  queue: AdmissionGate;
  /**
   * Resolves once the shared store answers (at once without Redis); throws an UnavailableError
   * naming REDIS_URL and the cause when it does not within a few seconds. For start-up.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const IDLE_MS = 15 * 60_000;
const ANSWER_TIMEOUT_MS = 5_000;
/** Bottleneck's default: each live limiter refreshes its last-seen time in Redis this often. */
const HEARTBEAT_MS = 5_000;
/**
 * A process unseen this long is dead: 4 missed heartbeats, so a GC pause, a busy event loop or a
 * Redis blink (whole seconds at worst) never frees a live process's slots, and Bottleneck itself
 * calls a client unresponsive after 10 s. It must stay below the job recovery's staleness bound
 * minus one job heartbeat (recovery.ts: 30 s − 5 s): a dead process's jobs are re-queued from 25 s
 * after its last job heartbeat, and their old slots must be free by then, or the recovered jobs
 * are refused by the limits their own dead slots fill ('requeue-refused').
 */
const DEAD_AFTER_MS = 20_000;
/**
 * The queue limiter is reaped this often without a refusal: one script call a minute per process
 * (a refusal reaps at once anyway). User limiters are reaped on refusal only: a dead slot of a
 * user matters only when that user is refused, and their keys expire like anyone's.
 */
const REAP_EVERY_MS = 60_000;
/**
 * A user's keys in Redis expire this long after their last admission (Bottleneck's TTL). Far
 * longer than a job waits and runs, so a held slot is never forgotten; it only bounds how long
 * Redis keeps users who left.
 */
const USER_KEYS_TTL_MS = 24 * 3_600_000;

export const UNAVAILABLE_MESSAGE = 'The queue service is unavailable; try again in a minute.';

/** Bottleneck's words for a job refused under highWater 0 + OVERFLOW (frozen since 2.19.5, 2020). */
const REFUSED = 'This job has been dropped by Bottleneck';

function isRefusal(err: unknown): boolean {
  return err instanceof Bottleneck.BottleneckError && err.message === REFUSED;
}

function noAnswer(ms: number): Error {
  return new Error(`the admission store did not answer within ${ms / 1000} s`);
}

/**
 * A job that starts at once and holds its slot until released; refused instead of queued. A
 * slot granted after the caller gave up waiting is handed straight back.
 */
function holdSlot(limiter: Bottleneck, timeoutMs: number): Promise<Slot | undefined> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const answer = (settle: () => void) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      settle();
    };
    const timer = setTimeout(() => answer(() => reject(noAnswer(timeoutMs))), timeoutMs);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    limiter
      .schedule(() => {
        if (answered) return Promise.resolve();
        answer(() => resolve({ release }));
        return held;
      })
      .catch((err: unknown) => answer(() => (isRefusal(err) ? resolve(undefined) : reject(err))));
  });
}

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(noAnswer(ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function unavailable(cause: unknown): UserError {
  return new UserError('unavailable', UNAVAILABLE_MESSAGE, { service: 'queue' }, { cause });
}

function gate(
  limit: number,
  pool: LimiterPool,
  timeoutMs: number,
  reaper: Reaper | undefined,
): AdmissionGate {
  // refused: slots of dead processes may be what fills the limit; free them and try once more
  const admit = async (limiter: Bottleneck) =>
    (await holdSlot(limiter, timeoutMs)) ??
    ((await reaper?.reapFor(limiter)) ? holdSlot(limiter, timeoutMs) : undefined);
  return {
    limit,
    async tryAcquire(key) {
      try {
        const { result: slot, done } = await pool.hold(key, admit, (s) => s !== undefined);
        return (
          slot && {
            release() {
              slot.release();
              done();
            },
          }
        );
      } catch (err) {
        reaper?.trouble();
        throw unavailable(err);
      }
    },
    async held(key) {
      try {
        return Number(await pool.run(key, (limiter) => withDeadline(limiter.running(), timeoutMs)));
      } catch (err) {
        reaper?.trouble();
        throw unavailable(err);
      }
    },
  };
}

/** Runs `fn` every `ms` (never while its last run is unfinished); no timer for Infinity. */
function everyMs(ms: number, fn: () => Promise<unknown>): NodeJS.Timeout | undefined {
  if (!Number.isFinite(ms)) return undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    fn().finally(() => {
      busy = false;
    });
  }, ms);
  timer.unref();
  return timer;
}

export function createLimiters(settings: LimiterSettings): Limiters {
  const ns = settings.namespace ?? 'hiresbot';
  const heartbeatMs = settings.heartbeatMs ?? HEARTBEAT_MS;
  const deadAfterMs = settings.deadAfterMs ?? DEAD_AFTER_MS;
  if (deadAfterMs < 3 * heartbeatMs) {
    throw new Error(`deadAfterMs (${deadAfterMs}) must be at least 3 heartbeats (${heartbeatMs} ms)`);
  }
  const redis: AdmissionRedis | undefined = settings.redisUrl
    ? connectAdmissionRedis(settings.redisUrl)
    : undefined;
  const reaper = redis && new Reaper(redis.client, deadAfterMs, settings.log);
  const cluster = redis
    ? { datastore: 'ioredis' as const, connection: redis.connection, heartbeatInterval: heartbeatMs }
    : {};
  const watched = (limiter: Bottleneck) => {
    if (!redis || !reaper) return limiter;
    // a failed heartbeat is how a process learns that Redis stopped hearing from it
    limiter.on('error', reaper.trouble);
    resendLostReleases(limiter, redis.connection, reaper.trouble);
    return limiter;
  };
  const queueId = `${ns}-queue-${settings.queueMax}`;
  const refuseWhenFull = { highWater: 0, strategy: Bottleneck.strategy.OVERFLOW };
  // Bottleneck keeps the settings it first stored in Redis; the limit is part of each id so that
  // a changed USER_MAX_JOBS or QUEUE_MAX takes effect instead of the stored one. The user ids
  // are those Bottleneck.Group made, so processes of the previous version share the counts.
  const users = new LimiterPool(
    (key) =>
      watched(
        new Bottleneck({
          id: `${ns}-users-${settings.perUser}-${key}`,
          maxConcurrent: settings.perUser,
          ...refuseWhenFull,
          ...cluster,
          timeout: USER_KEYS_TTL_MS,
        }),
      ),
    settings.idleMs ?? IDLE_MS,
  );
  const queue = new LimiterPool(
    () =>
      watched(
        new Bottleneck({
          id: queueId,
          maxConcurrent: settings.queueMax,
          ...refuseWhenFull,
          ...cluster,
        }),
      ),
    Number.POSITIVE_INFINITY,
  );
  const timeoutMs = settings.answerTimeoutMs ?? ANSWER_TIMEOUT_MS;
  const sweep =
    reaper &&
    everyMs(settings.reapEveryMs ?? REAP_EVERY_MS, () => {
      const own = queue.current('all');
      return reaper.reap(queueId, own ? clientIdOf(own) : '');
    });

  return {
    users: gate(settings.perUser, users, timeoutMs, reaper),
    queue: gate(settings.queueMax, queue, timeoutMs, reaper),
    ping: () => redis?.ping() ?? Promise.resolve(),
    async close() {
      clearInterval(sweep);
      await users.close();
      await queue.close();
      await redis?.connection.disconnect(false);
    },
  };
}
