// The discord.js client: log in, register the slash commands when they changed, route
// interactions to commands/, follow jobs a restart took over, shut down cleanly.
import { Client, Events, GatewayIntentBits } from 'discord.js';
import { commands as allCommands } from '../../commands/index.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Command, CommandContext } from './command.ts';
import { Deliveries } from './deliveries.ts';
import { sayHandedBack } from './handed-back.ts';
import { errorForLog } from './log-error.ts';
import { inviteUrl, registerCommands } from './register.ts';
import { attachRouter, createRouter } from './router.ts';
import { followRecovered } from './run-job.ts';
import type { FrontEndServices } from './services.ts';

export interface RunningBot {
  client: Client<true>;
  /**
   * Stops running commands (each new one is answered "the bot is restarting"); the client stays
   * up for the job service's last edits.
   */
  stopCommands(): void;
  /** Waits (at most `timeoutMs`) for the jobs being followed to be delivered; returns how many are left. */
  settle(timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export interface FrontEnd {
  services: FrontEndServices;
  /** Default: every command in commands/index.ts. */
  commands?: readonly Command[];
  /** Least time between two edits of one reply (default 2 s). */
  editIntervalMs?: number;
}

/**
 * Logs in and waits for the gateway. With a front end, the commands are registered (when they
 * differ from Discord's) and answered; without one the bot only connects (the CLI-era wiring).
 */
export async function startBot(config: Config, log: Logger, frontEnd?: FrontEnd): Promise<RunningBot> {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    // Nothing the bot sends may ping anyone unless a reply builder opts in explicitly.
    allowedMentions: { parse: [], repliedUser: false },
    ...(config.discord.apiUrl ? { rest: { api: config.discord.apiUrl } } : {}),
  });
  const ready = new Promise<Client<true>>((resolve) => client.once(Events.ClientReady, resolve));
  const stops: (() => void)[] = [];
  let detachRouter = () => {};
  let stopTaking = () => {};
  const deliveries = new Deliveries();
  if (frontEnd) {
    const ctx: CommandContext = {
      services: frontEnd.services,
      log,
      limits: config.limits,
      editIntervalMs: frontEnd.editIntervalMs,
      deliveries,
    };
    const commands = frontEnd.commands ?? allCommands;
    // routing starts before login so that no interaction arrives unanswered
    const router = createRouter(commands, ctx);
    stopTaking = () => router.stopTaking();
    detachRouter = attachRouter(client, router);
    void ready.then((c) => {
      stops.push(frontEnd.services.onRecovered((job) => void followRecovered(c, c.application.id, job, ctx)));
      stops.push(frontEnd.services.onHandedBack((job) => sayHandedBack(c, c.application.id, job, log)));
    });
  }
  await client.login(config.discord.token);
  const readyClient = await ready;
  const applicationId = readyClient.application.id;
  log.info({ user: readyClient.user.tag, guilds: readyClient.guilds.cache.size }, 'connected to Discord');
  // (a shard sees only its own servers: none there says nothing of the bot)
  if (readyClient.guilds.cache.size === 0 && readyClient.shard === null) {
    log.warn(
      { invite: inviteUrl(applicationId) },
      'the bot is in no server yet: open this link to invite it',
    );
  }
  // commands are the application's, not a shard's: under a ShardingManager shard 0 registers them
  if (frontEnd && (readyClient.shard?.ids.includes(0) ?? true)) {
    const commands = frontEnd.commands ?? allCommands;
    try {
      const result = await registerCommands({
        rest: readyClient.rest,
        applicationId,
        guildId: config.discord.guildId,
        commands: commands.map((c) => c.data(config.limits)),
      });
      log.info(result, result.updated ? 'slash commands registered' : 'slash commands unchanged');
    } catch (err) {
      log.error(
        { err: errorForLog(err) },
        'could not register the slash commands; Discord keeps the previous ones',
      );
    }
  }
  return {
    client: readyClient,
    stopCommands: () => stopTaking(),
    settle: (timeoutMs) => deliveries.settle(timeoutMs),
    async stop() {
      detachRouter();
      for (const stop of stops) stop();
      await client.destroy();
    },
  };
}
