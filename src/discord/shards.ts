/**
 * The gateway of a bot in thousands of servers (Discord requires shards past 2,500): a discord.js
 * ShardingManager runs the bot's own entry once per shard, each in a process of its own. A shard
 * process is the whole bot; its Client reads its shard id and the count from the environment the
 * manager gives it (SHARDS, SHARD_COUNT) and receives only its own guilds' events. The manager
 * process loads no model and opens no database: it starts the shards one after another, brings
 * back one that dies, and stops them all on a stop signal.
 */
import { REST, Routes, ShardingManager } from 'discord.js';
import { type Config, MAX_SHARDS } from '../config.ts';
import type { Logger } from '../log.ts';

/** Whether this process is a shard that a ShardingManager started. */
export function isShardProcess(env: NodeJS.ProcessEnv): boolean {
  return env.SHARDING_MANAGER === 'true';
}

/** A shard's log lines carry its id, for a log that several shard processes write to. */
export function shardLogger(log: Logger, env: NodeJS.ProcessEnv): Logger {
  return isShardProcess(env) ? log.child({ shard: Number(env.SHARDS) }) : log;
}

/** The count to run: the setting, or for `auto` what GET /gateway/bot recommends. */
export async function shardCount(discord: Config['discord']): Promise<number> {
  if (discord.shards !== 'auto') return discord.shards ?? 1;
  // discord.js's own `auto` always asks discord.com; this honours DISCORD_API_URL (a REST proxy)
  const rest = new REST(discord.apiUrl ? { api: discord.apiUrl } : {}).setToken(discord.token ?? '');
  try {
    const { shards } = (await rest.get(Routes.gatewayBot())) as { shards: unknown };
    if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new Error(`it answered ${JSON.stringify(shards)}, not a whole number from 1 to ${MAX_SHARDS}`);
    }
    return shards;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`DISCORD_SHARDS=auto: Discord did not say how many shards to run (${why})`, {
      cause: err,
    });
  }
}

/** How long a shard may take to connect: its start loads the model (a checkpoint import, once). */
const READY_TIMEOUT_MS = 60 * 60_000;

export interface RunningShards {
  count: number;
  /** Stops every shard process (each shuts down as a lone bot does); false if one failed to. */
  stop(signal: NodeJS.Signals): Promise<boolean>;
}

/**
 * Starts the shards of `entry` (this same program) and resolves once every one is connected;
 * rejects, with the shards stopped, if one exits before it is.
 */
export async function startShards(config: Config, log: Logger, entry: string): Promise<RunningShards> {
  const count = await shardCount(config.discord);
  const manager = new ShardingManager(entry, {
    totalShards: count,
    token: config.discord.token,
    // the shard runs under the same loader (`--import tsx`) as this process
    execArgv: process.execArgv,
    // a shard that dies while starting is a start-up failure, not something to retry forever
    respawn: false,
  });
  manager.on('shardCreate', (shard) => {
    log.info({ shard: shard.id, count }, 'starting shard');
    shard.on('death', (child) => {
      const at = { shard: shard.id, code: 'exitCode' in child ? child.exitCode : undefined };
      if (manager.respawn) log.warn(at, 'shard process exited: starting it again');
      else log.info(at, 'shard process exited');
    });
  });
  const stop = async (signal: NodeJS.Signals): Promise<boolean> => {
    manager.respawn = false;
    const exits = [...manager.shards.values()].map((shard) => {
      const child = shard.process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return true;
      const exited = new Promise<boolean>((resolve) => child.once('exit', (code) => resolve(code === 0)));
      child.kill(signal);
      return exited;
    });
    return (await Promise.all(exits)).every(Boolean);
  };
  try {
    // one after another, each connected before the next starts: Discord allows one IDENTIFY per
    // 5 s, and the first shard imports a checkpoint that the others then find in the cache
    await manager.spawn({ amount: count, timeout: READY_TIMEOUT_MS });
  } catch (err) {
    await stop('SIGTERM');
    throw new Error('a shard stopped before it connected to Discord (its own output says why)', {
      cause: err,
    });
  }
  manager.respawn = true;
  log.info({ count }, 'all shards connected');
  return { count, stop };
}
