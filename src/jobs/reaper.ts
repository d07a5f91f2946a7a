/**
 * Frees the admission slots of bot processes that died holding them (SIGKILL, OOM, a host gone).
 *
 * Bottleneck frees a dead client's running jobs only through job `expiration`, which a slot held
 * for a job's whole life (queue wait included) cannot have, and its tick drops an unresponsive
 * client only once that client runs nothing: the slots of a dead process stayed counted for ever
 * (the queue) or a day (a user's keys' TTL). Bottleneck has no setting that does this.
 *
 * Every limiter instance is a Bottleneck client that heartbeats (every `heartbeatMs`) into
 * `client_last_seen`. The reaper script takes a client not seen for `deadAfterMs` that still has
 * running jobs for dead, and expires its jobs exactly as free.lua frees one (score 0 in
 * `job_expirations`), then runs Bottleneck's own process_tick in the same script: the counters
 * (`running`, `client_running`, `done`) are corrected by Bottleneck's code, the dead client is
 * dropped as any idle unresponsive one, and freed capacity is published. A live client wrongly
 * taken for dead re-registers on its next call (UNKNOWN_CLIENT), and its later release of a
 * reaped job counts nothing (the job's weight is gone): too many admissions for a while, never
 * a negative count.
 *
 * Written against Bottleneck 2.19.5 (frozen since 2020): the script is its refs.lua (the eight
 * keys of lib/Scripts.js allKeys: settings, job_weights, job_expirations, job_clients,
 * client_running, client_num_queued, client_last_registered, client_last_seen) and its
 * process_tick.lua, taken from the installed package, followed by our part, which reads
 * `client_last_seen`, `client_running` and `job_clients` and writes `job_expirations`. Another
 * Bottleneck version must be checked against these; test/jobs/admission-reaper.test.ts pins the
 * version and the layout and fails when the reaping stops working.
 *
 * Clocks: like Bottleneck, scores are the callers' Date.now(); hosts must agree to well within
 * `deadAfterMs`.
 *
 * After Redis was away (a restart with persistence, a failover, a partition) every client looks
 * unseen until its next heartbeat: nobody is taken for dead until this process has been in touch
 * with Redis, without a failure, for `deadAfterMs` again.
 */
import { createRequire } from 'node:module';
import type Bottleneck from 'bottleneck';
import type { Redis } from 'ioredis';

const require = createRequire(import.meta.url);
const bottleneckLua = require('bottleneck/lib/lua.json') as Record<string, string>;
const { allKeys } = require('bottleneck/lib/Scripts.js') as { allKeys(id: string): string[] };

// After refs.lua: KEYS as allKeys; ARGV[1] now, ARGV[2] our own client (never reaped), then ours.
const REAP = `
local dead_after = tonumber(ARGV[num_static_argv + 1])
if redis.call('exists', settings_key) == 0 then
  return {0, 0}
end

local unseen = redis.call('zrangebyscore', client_last_seen_key, '-inf', now - dead_after)
local dead = {}
local dead_clients = 0
for i = 1, #unseen do
  local c = unseen[i]
  if c ~= client and (tonumber(redis.call('zscore', client_running_key, c)) or 0) > 0 then
    dead[c] = true
    dead_clients = dead_clients + 1
  end
end
if dead_clients == 0 then
  return {0, 0}
end

local freed = 0
local job_clients = redis.call('hgetall', job_clients_key)
for i = 1, #job_clients, 2 do
  if dead[job_clients[i + 1]] then
    redis.call('zadd', job_expirations_key, 0, job_clients[i])
    freed = freed + 1
  end
end
process_tick(now, false)
return {dead_clients, freed}
`;

function bottleneckScript(name: string): string {
  const text = bottleneckLua[name];
  if (!text) throw new Error(`Bottleneck has no ${name}: the reaper was written for Bottleneck 2.19.5`);
  return text;
}

/** The whole script, as Redis runs it (exported for the test that checks it was loaded). */
export const REAPER_LUA = [bottleneckScript('refs.lua'), bottleneckScript('process_tick.lua'), REAP].join(
  '\n',
);

const KEY_COUNT = allKeys('').length;

interface ReapCommand {
  hiresbotReap(...args: (string | number)[]): Promise<[number, number]>;
}

export interface ReaperLog {
  warn(obj: object, msg: string): void;
}

/** Bottleneck's client id of a limiter instance (its Redis datastore's). */
export function clientIdOf(limiter: Bottleneck): string {
  const l = limiter as Bottleneck & { channel_client(): string };
  return l.channel_client().slice(l.channel().length + 1);
}

export class Reaper {
  private lastTrouble = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly client: Redis,
    private readonly deadAfterMs: number,
    private readonly log?: ReaperLog,
  ) {
    client.defineCommand('hiresbotReap', { numberOfKeys: KEY_COUNT, lua: REAPER_LUA });
    client.on('error', this.trouble);
    client.on('close', this.trouble);
  }

  /** Redis failed or went away: nobody is taken for dead until it has answered for a while again. */
  readonly trouble = (): void => {
    this.lastTrouble = Date.now();
  };

  /**
   * Frees the slots that clients not seen for `deadAfterMs` hold in limiter `id`, never those of
   * `own`. Resolves to the number of slots freed: 0 also when Redis fails (noted as trouble) or
   * was away too recently to tell the dead from the cut off.
   */
  async reap(id: string, own = ''): Promise<number> {
    if (Date.now() - this.lastTrouble < this.deadAfterMs) return 0;
    try {
      const [clients, freed] = await (this.client as unknown as ReapCommand).hiresbotReap(
        ...allKeys(id),
        Date.now(),
        own,
        this.deadAfterMs,
      );
      if (freed > 0) {
        this.log?.warn(
          { limiter: id, clients, freed, deadAfterMs: this.deadAfterMs },
          'freed admission slots of bot processes Redis has not heard from',
        );
      }
      return freed;
    } catch {
      this.trouble();
      return 0;
    }
  }

  /** reap() for a limiter instance of this process, which is never taken for dead. */
  reapFor(limiter: Bottleneck): Promise<number> {
    return this.reap(limiter.id, clientIdOf(limiter));
  }
}
