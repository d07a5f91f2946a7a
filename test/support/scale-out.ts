// One gateway and GPU workers, each as `npm start` starts it, sharing a PostgreSQL database and the
// machine's Redis (under a prefix of the test's own) against the Discord stand-in.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type BotProcess, startBotProcess } from './bot-process.ts';
import type { DiscordStandIn } from './discord-stand-in.ts';
import type { botFolder } from './real-bot.ts';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface ScaleOut {
  folder: ReturnType<typeof botFolder>;
  standIn: DiscordStandIn;
  databaseUrl: string;
  /** The Redis prefix of this test's processes. */
  prefix: string;
  guildId: string;
  /** Settings of the test's own, for every process. */
  env?: Record<string, string>;
}

/** A fresh Redis prefix named after the test. */
export const redisPrefix = (test: string): string => `hiresbot-${test}-${randomBytes(4).toString('hex')}`;

/** The environment of a `gateway` or `worker` process. */
export function roleEnv(s: ScaleOut, role: 'gateway' | 'worker'): Record<string, string> {
  return {
    ...s.folder.env,
    PROCESS_ROLE: role,
    DATABASE_URL: s.databaseUrl,
    REDIS_URL,
    REDIS_PREFIX: s.prefix,
    DISCORD_TOKEN: s.standIn.token,
    DISCORD_API_URL: s.standIn.apiUrl,
    DISCORD_GUILD_ID: s.guildId,
    LOG_LEVEL: 'info',
    ...s.env,
  };
}

/** A worker, once it takes jobs and answers them through Discord's REST API (killed if it never does). */
export async function startWorker(s: ScaleOut): Promise<{ p: BotProcess; instance: string }> {
  const p = startBotProcess(s.folder.dir, roleEnv(s, 'worker'));
  try {
    const ready = await p.waitForLog('jobs ready');
    await p.waitForLog('worker answers jobs through Discord’s REST API');
    return { p, instance: ready.instance as string };
  } catch (err) {
    p.kill();
    throw err;
  }
}

/** Removes what the test's processes left in Redis. */
export async function forgetRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`b_${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
}
