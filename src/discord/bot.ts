// The discord.js client: log in, report readiness, shut down cleanly.
import { Client, Events, GatewayIntentBits } from 'discord.js';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';

export interface RunningBot {
  client: Client;
  stop(): Promise<void>;
}

export async function startBot(config: Config, log: Logger): Promise<RunningBot> {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    // Nothing the bot sends may ping anyone unless a reply builder opts in explicitly.
    allowedMentions: { parse: [], repliedUser: false },
    ...(config.discord.apiUrl ? { rest: { api: config.discord.apiUrl } } : {}),
  });
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(config.discord.token);
  await ready;
  log.info({ user: client.user?.tag, guilds: client.guilds.cache.size }, 'connected to Discord');
  return {
    client,
    async stop() {
      await client.destroy();
    },
  };
}
