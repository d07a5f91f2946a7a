/**
 * Bottleneck behind our own small interface. Admission gates count a job from enqueue until it
 * finishes: one per user (USER_MAX_JOBS) and one for the whole queue (QUEUE_MAX). With a Redis
 * URL they are Bottleneck clusters, shared by every bot process. How many jobs run at once is not
 * decided here but by the job service's dispatch (one job per engine).
 */
import Bottleneck from 'bottleneck';

export interface Slot {
  release(): void;
}

export interface AdmissionGate {
  /** Slots per key. */
  readonly limit: number;
  /** Takes one slot for `key`, or returns undefined when all are held (never waits). */
  tryAcquire(key: string): Promise<Slot | undefined>;
  /** Slots held for `key`, across the cluster. */
  held(key: string): Promise<number>;
}

export interface LimiterSettings {
  perUser: number;
  queueMax: number;
  redisUrl?: string | undefined;
  /** Prefix of the Bottleneck ids, so that separate deployments on one Redis do not mix. */
  namespace?: string;
}

export interface Limiters {
  users: AdmissionGate;
  queue: AdmissionGate;
  close(): Promise<void>;
}

const DAY_MS = 24 * 3_600_000;

/** A job that starts at once and holds its slot until released; refused instead of queued. */
function holdSlot(limiter: Bottleneck): Promise<Slot | undefined> {
  return new Promise((resolve) => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    limiter
      .schedule(() => {
        resolve({ release });
        return held;
      })
      .catch(() => resolve(undefined)); // dropped: the limit was reached (highWater 0 + OVERFLOW)
  });
}

export function createLimiters(settings: LimiterSettings): Limiters {
  const ns = settings.namespace ?? 'hiresbot';
  const connection = settings.redisUrl
    ? new Bottleneck.IORedisConnection({ clientOptions: settings.redisUrl })
    : undefined;
  const cluster = connection ? { datastore: 'ioredis' as const, connection } : {};
  const refuseWhenFull = { highWater: 0, strategy: Bottleneck.strategy.OVERFLOW };
  // Bottleneck keeps the settings it first stored in Redis; the limit is part of each id so that
  // a changed USER_MAX_JOBS or QUEUE_MAX takes effect instead of the stored one.

  const userGroup = new Bottleneck.Group({
    id: `${ns}-users-${settings.perUser}`,
    maxConcurrent: settings.perUser,
    ...refuseWhenFull,
    ...cluster,
    // keep a user's limiter while their jobs wait, however long the queue
    timeout: DAY_MS,
  });
  const queueLimiter = new Bottleneck({
    id: `${ns}-queue-${settings.queueMax}`,
    maxConcurrent: settings.queueMax,
    ...refuseWhenFull,
    ...cluster,
  });
  const gate = (limit: number, limiterFor: (key: string) => Bottleneck): AdmissionGate => ({
    limit,
    tryAcquire: (key) => holdSlot(limiterFor(key)),
    held: async (key) => Number(await limiterFor(key).running()),
  });

  return {
    users: gate(settings.perUser, (key) => userGroup.key(key)),
    queue: gate(settings.queueMax, () => queueLimiter),
    async close() {
      // disconnect() returns nothing for a limiter on a shared connection: wrap every call
      const quietly = async (f: () => unknown) => {
        try {
          await f();
        } catch {
          // closing anyway
        }
      };
      await quietly(() => queueLimiter.disconnect(false));
      for (const { limiter } of userGroup.limiters()) await quietly(() => limiter.disconnect(false));
      await quietly(() => connection?.disconnect(false));
    },
  };
}
