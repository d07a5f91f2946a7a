/**
 * Bottleneck behind our own small interface. Admission gates count a job from enqueue until it
 * finishes: one per user (USER_MAX_JOBS) and one for the whole queue (QUEUE_MAX). With a Redis
 * URL they are Bottleneck clusters, shared by every bot process. How many jobs run at once is not
 * decided here but by the job service's dispatch (one job per engine).
 *
 * A gate answers within seconds whatever Redis does: a slot, a refusal (undefined), or a
 * UserError 'unavailable' when Redis failed or did not answer, so a refusal and an outage never
 * look alike. After an outage, a flush or a Redis restart the gates work again by themselves.
 */
import Bottleneck from 'bottleneck';
import { UserError } from '../user-error.ts';
import { LimiterPool } from './limiter-pool.ts';
import { type AdmissionRedis, connectAdmissionRedis } from './redis-connection.ts';

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

function gate(limit: number, pool: LimiterPool, timeoutMs: number): AdmissionGate {
  return {
    limit,
    async tryAcquire(key) {
      try {
        const { result: slot, done } = await pool.hold(
          key,
          (limiter) => holdSlot(limiter, timeoutMs),
          (s) => s !== undefined,
        );
        return (
          slot && {
            release() {
              slot.release();
              done();
            },
          }
        );
      } catch (err) {
        throw unavailable(err);
      }
    },
    async held(key) {
      try {
        return Number(await pool.run(key, (limiter) => withDeadline(limiter.running(), timeoutMs)));
      } catch (err) {
        throw unavailable(err);
      }
    },
  };
}

export function createLimiters(settings: LimiterSettings): Limiters {
  const ns = settings.namespace ?? 'hiresbot';
  const redis: AdmissionRedis | undefined = settings.redisUrl
    ? connectAdmissionRedis(settings.redisUrl)
    : undefined;
  const cluster = redis ? { datastore: 'ioredis' as const, connection: redis.connection } : {};
  const refuseWhenFull = { highWater: 0, strategy: Bottleneck.strategy.OVERFLOW };
  // Bottleneck keeps the settings it first stored in Redis; the limit is part of each id so that
  // a changed USER_MAX_JOBS or QUEUE_MAX takes effect instead of the stored one. The user ids
  // are those Bottleneck.Group made, so processes of the previous version share the counts.
  const users = new LimiterPool(
    (key) =>
      new Bottleneck({
        id: `${ns}-users-${settings.perUser}-${key}`,
        maxConcurrent: settings.perUser,
        ...refuseWhenFull,
        ...cluster,
        timeout: USER_KEYS_TTL_MS,
      }),
    settings.idleMs ?? IDLE_MS,
  );
  const queue = new LimiterPool(
    () =>
      new Bottleneck({
        id: `${ns}-queue-${settings.queueMax}`,
        maxConcurrent: settings.queueMax,
        ...refuseWhenFull,
        ...cluster,
      }),
    Number.POSITIVE_INFINITY,
  );
  const timeoutMs = settings.answerTimeoutMs ?? ANSWER_TIMEOUT_MS;

  return {
    users: gate(settings.perUser, users, timeoutMs),
    queue: gate(settings.queueMax, queue, timeoutMs),
    ping: () => redis?.ping() ?? Promise.resolve(),
    async close() {
      await users.close();
      await queue.close();
      await redis?.connection.disconnect(false);
    },
  };
}
