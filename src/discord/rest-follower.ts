/**
 * A worker's Discord side: no gateway connection, only REST. Every job this process takes from
 * the shared queue is followed to the end as a recovered one (followRecovered): progress edits,
 * previews and the result through the interaction's webhook (application id + the token the job
 * row keeps), throttled as in the gateway; after the token's 15 minutes, a post in the channel.
 */
import { Client, Routes } from 'discord.js';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { CommandContext } from './command.ts';
import { sayHandedBack } from './handed-back.ts';
import { followRecovered } from './run-job.ts';
import type { FrontEndServices } from './services.ts';

export interface RestFollower {
  applicationId: string;
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
  const applicationId =
    config.discord.applicationId ??
    ((await client.rest.get(Routes.currentApplication())) as { id: string }).id;
  const ctx: CommandContext = { services, log, limits: config.limits, editIntervalMs: o.editIntervalMs };
  const unsubscribe = services.onRecovered((job) => void followRecovered(client, applicationId, job, ctx));
  // (main.ts stops the job service before this follower: a stop's hand-backs are said first)
  const unsubscribeHandBacks = services.onHandedBack((job) => sayHandedBack(client, applicationId, job, log));
  log.info({ applicationId }, 'worker answers jobs through Discord’s REST API');
  return {
    applicationId,
    async stop() {
      unsubscribe();
      unsubscribeHandBacks();
      await client.destroy();
    },
  };
}
