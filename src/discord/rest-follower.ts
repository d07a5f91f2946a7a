/**
 * A worker's Discord side: no gateway connection, only REST. Every job this process takes from
 * the shared queue is followed to the end as a recovered one (followRecovered): progress edits,
 * previews and the result through the interaction's webhook (application id + the token the job
 * row keeps), throttled as in the gateway; after the token's 15 minutes, a post in the channel.
 */
import { Client, DiscordAPIError, Routes } from 'discord.js';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { CommandContext } from './command.ts';
import { Deliveries } from './deliveries.ts';
import { sayHandedBack } from './handed-back.ts';
import { errorForLog } from './log-error.ts';
import { followRecovered } from './run-job.ts';
import type { FrontEndServices } from './services.ts';

export interface RestFollower {
  applicationId: string;
  /** Waits (at most `timeoutMs`) for the jobs being followed to be delivered; returns how many are left. */
  settle(timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startRestFollower(
  config: Config,
  log: Logger,
  services: FrontEndServices,
  o: { editIntervalMs?: number } = {},
): Promise<RestFollower> {
  // a client that never logs in: discord.js's REST side (@discordjs/rest), its payload building
  // and webhooks, without a gateway session
  const client = new Client({
    intents: [],
    allowedMentions: { parse: [], repliedUser: false },
    ...(config.discord.apiUrl ? { rest: { api: config.discord.apiUrl } } : {}),
  });
  client.rest.setToken(config.discord.token ?? '');
  const applicationId = await checkedApplication(client, config.discord.applicationId, log);
  const deliveries = new Deliveries();
  const ctx: CommandContext = {
    services,
    log,
    limits: config.limits,
    editIntervalMs: o.editIntervalMs,
    deliveries,
  };
  const unsubscribe = services.onRecovered((job) => void followRecovered(client, applicationId, job, ctx));
  // (main.ts stops the job service before this follower: a stop's hand-backs are said first)
  const unsubscribeHandBacks = services.onHandedBack((job) => sayHandedBack(client, applicationId, job, log));
  log.info({ applicationId }, 'worker answers jobs through Discord’s REST API');
  return {
    applicationId,
    settle: (timeoutMs) => deliveries.settle(timeoutMs),
    async stop() {
      unsubscribe();
      unsubscribeHandBacks();
      await client.destroy();
    },
  };
}

/** How long the start waits for Discord to say whose token this is, when it need not know. */
const CHECK_TIMEOUT_MS = 10_000;

/**
 * The application whose token DISCORD_TOKEN is, checked with Discord even when
 * DISCORD_APPLICATION_ID is set: a worker with a refused token, or with another application's
 * id, would run and charge jobs whose replies it can never edit. When the id is set and Discord
 * cannot be reached (no connection, no answer in 10 s, a 5xx or a rate limit), the worker starts
 * anyway: its GPU work needs only the database.
 */
async function checkedApplication(
  client: Client,
  configured: string | undefined,
  log: Logger,
): Promise<string> {
  let app: { id: string };
  try {
    app = (await client.rest.get(Routes.currentApplication(), {
      ...(configured ? { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) } : {}),
    })) as { id: string };
  } catch (err) {
    if (err instanceof DiscordAPIError && err.status === 401)
      throw new Error('Discord refused DISCORD_TOKEN (401 Unauthorized): give the worker the bot’s token.', {
        cause: err,
      });
    // any other answer of Discord's but a rate limit is an answer too: not "unreachable"
    const answered = err instanceof DiscordAPIError && err.status < 500 && err.status !== 429;
    if (!configured || answered)
      throw new Error(`could not ask Discord whose token DISCORD_TOKEN is: ${(err as Error).message}`, {
        cause: err,
      });
    log.warn(
      { err: errorForLog(err) },
      'could not check DISCORD_TOKEN with Discord; going on with DISCORD_APPLICATION_ID',
    );
    return configured;
  }
  if (configured && app.id !== configured)
    throw new Error(
      `DISCORD_APPLICATION_ID is ${configured}, but DISCORD_TOKEN is the token of application ${app.id}: give every process the same bot’s values.`,
    );
  return app.id;
}
