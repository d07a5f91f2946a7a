/**
 * The Redis connection behind the admission gates: ioredis set to fail in seconds rather than
 * wait, the two places where Bottleneck 2.19.5 meets Redis 7 corrected, and a release Bottleneck
 * would lose sent again (resendLostReleases).
 *
 * - Bottleneck recovers from a lost settings key (FLUSHALL, a Redis restart without persistence)
 *   and from a forgotten client by matching the script errors `SETTINGS_KEY_NOT_FOUND` and
 *   `UNKNOWN_CLIENT` exactly; Redis 7 prefixes Lua error replies with `ERR `, so the match
 *   failed and every later call failed with it. The connection hands Bottleneck the bare code.
 * - A limiter leaving a shared connection unsubscribes without catching, so doing it while Redis
 *   is down was an unhandled rejection. Here it cannot fail.
 */
import Bottleneck from 'bottleneck';
import { Redis, type RedisOptions } from 'ioredis';
import { addressOf, CONNECT_TIMEOUT_S, connectFailureReason, UnavailableError } from '../unavailable.ts';

/** A command Redis has not answered in this time fails instead of waiting for ever. */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

export const REDIS_OPTIONS: RedisOptions = {
  connectTimeout: CONNECT_TIMEOUT_S * 1000,
  commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  // while disconnected a command fails at once instead of queueing until Redis returns
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  // keep reconnecting, every 2 s at most, so admission resumes by itself when Redis is back
  retryStrategy: (times) => Math.min(times * 200, 2_000),
};

type ScriptCallback = (err: Error | null, replies: unknown) => void;

/** The bare Bottleneck code inside a Redis error reply, e.g. "ERR SETTINGS_KEY_NOT_FOUND". */
function bottleneckCode(message: string): string | undefined {
  return /\b(SETTINGS_KEY_NOT_FOUND|UNKNOWN_CLIENT|OVERWEIGHT:\d+:\d+)\b/.exec(message)?.[1];
}

// The members of Bottleneck's connection that its types leave out.
interface ConnectionInternals {
  client: Redis;
  ready: Promise<unknown>;
  limiters: Record<string, unknown>;
  terminated: boolean;
  subscriber: Redis;
}

class AdmissionConnection extends Bottleneck.IORedisConnection {
  __scriptArgs__(name: string, id: string, args: unknown[], cb: ScriptCallback): unknown[] {
    const base = Bottleneck.IORedisConnection.prototype as unknown as {
      __scriptArgs__(this: unknown, n: string, i: string, a: unknown[], c: ScriptCallback): unknown[];
    };
    return base.__scriptArgs__.call(this, name, id, args, (err, replies) => {
      const code = err ? bottleneckCode(err.message) : undefined;
      if (err && code && code !== err.message) cb(new Error(code, { cause: err }), replies);
      else cb(err, replies);
    });
  }

  __removeLimiter__(instance: Bottleneck & { channel_client(): string }): void {
    const self = this as unknown as ConnectionInternals;
    for (const channel of [instance.channel(), instance.channel_client()]) {
      delete self.limiters[channel];
      // if this fails Redis forgets the subscription when it reconnects without it: no harm
      if (!self.terminated) self.subscriber.unsubscribe(channel).catch(() => {});
    }
  }
}

/** Waits before a failed release is sent again: quick at first, then every 5 s. */
const RESEND_AFTER_MS = [250, 500, 1_000, 2_000, 5_000];

interface FreeingStore {
  __free__(index: string, weight: number): Promise<{ running: number }>;
}

/**
 * Bottleneck sends a job's release (free.lua) once; a failure is only an 'error' event. A release
 * lost to a dropped connection or a timeout left the slot counted in Redis for as long as the
 * process lived, its heartbeats keeping the reaper away. Here a failed release is sent again
 * until Redis takes it or the connection is closed. A release counts once whatever happens: one
 * that reached Redis but whose answer was lost frees nothing the second time (the job's weight
 * is gone).
 * Each attempt is a fresh call, with the current time as Bottleneck's `now`.
 */
export function resendLostReleases(
  limiter: Bottleneck,
  connection: Bottleneck.IORedisConnection,
  onFailure: (err: unknown) => void,
): void {
  const store = (limiter as unknown as { _store: FreeingStore })._store;
  const free = store.__free__.bind(store);
  const closed = () => (connection as unknown as ConnectionInternals).terminated;
  store.__free__ = async (index, weight) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await free(index, weight);
      } catch (err) {
        onFailure(err);
        if (closed()) throw err;
        const wait = RESEND_AFTER_MS[Math.min(attempt, RESEND_AFTER_MS.length - 1)];
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  };
}

export interface AdmissionRedis {
  connection: Bottleneck.IORedisConnection;
  /** The command connection Bottleneck uses, for scripts of our own on its keys (reaper.ts). */
  client: Redis;
  /** Resolves when Redis answers a PING; throws an UnavailableError naming REDIS_URL otherwise. */
  ping(): Promise<void>;
}

export function connectAdmissionRedis(url: string): AdmissionRedis {
  const client = new Redis(url, REDIS_OPTIONS);
  let lastError: unknown;
  client.on('error', (err) => {
    lastError = err;
  });
  const connection = new AdmissionConnection({ client });
  const internals = connection as unknown as ConnectionInternals;
  const unavailable = (cause: unknown) =>
    new UnavailableError('REDIS_URL', addressOf(url, 6379), connectFailureReason(cause), { cause });

  return {
    connection,
    client,
    async ping() {
      let timer: NodeJS.Timeout | undefined;
      let onError = (_err: Error) => {};
      // gives up at the deadline with the last connection error, or at once on a refused
      // password, which retrying will not mend
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(lastError ?? new Error(`timed out after ${CONNECT_TIMEOUT_S} s`)),
          CONNECT_TIMEOUT_S * 1000,
        );
        onError = (err) => {
          if (/^(WRONGPASS|NOAUTH)/.test(err.message)) reject(err);
        };
        client.on('error', onError);
      });
      try {
        // Bottleneck's ready waits for both connections (commands and pub/sub) the first time;
        // after an outage the command connection may still be reconnecting
        await Promise.race([internals.ready, deadline]);
        if (client.status !== 'ready') {
          let onReady = () => {};
          const ready = new Promise<void>((r) => {
            onReady = r;
          });
          client.once('ready', onReady);
          try {
            await Promise.race([ready, deadline]);
          } finally {
            client.off('ready', onReady);
          }
        }
        await Promise.race([client.ping(), deadline]);
      } catch (err) {
        throw unavailable(err);
      } finally {
        clearTimeout(timer);
        client.off('error', onError);
      }
    },
  };
}
