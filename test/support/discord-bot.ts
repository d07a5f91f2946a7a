// The real bot (startBot, commands/, router) against the Discord stand-in, with a log the test reads.
import { loadConfig } from '../../src/config.ts';
import { type FrontEnd, type RunningBot, startBot } from '../../src/discord/bot.ts';
import { createLogger } from '../../src/log.ts';
import type { DiscordStandIn, GuildSpec } from './discord-stand-in.ts';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export async function startTestBot(
  standIn: DiscordStandIn,
  frontEnd: FrontEnd | undefined,
  env: Record<string, string> = {},
): Promise<{ bot: RunningBot; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const log = createLogger({
    level: 'debug',
    secrets: [standIn.token],
    destination: { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  });
  const config = loadConfig({ DISCORD_TOKEN: standIn.token, DISCORD_API_URL: standIn.apiUrl, ...env });
  const bot = await startBot(config, log, frontEnd);
  return { bot, logs };
}

export const GUILD = '200000000000000001';
export const CHANNEL = '200000000000000002';
export const OTHER_CHANNEL = '200000000000000009';
export const ALICE = '200000000000000003';
export const BOB = '200000000000000004';
export const ADMIN = '200000000000000005';
export const ADMIN_ROLE = '200000000000000006';
export const ARTIST_ROLE = '200000000000000007';

export const TEST_GUILD: GuildSpec = {
  id: GUILD,
  name: 'Art club',
  roles: [
    { id: ADMIN_ROLE, name: 'Admins', permissions: 1n << 5n /* Manage Server */ },
    { id: ARTIST_ROLE, name: 'Artists' },
  ],
  channels: [
    { id: CHANNEL, name: 'art' },
    { id: OTHER_CHANNEL, name: 'other' },
  ],
  members: [
    { id: ALICE, username: 'alice', roles: [ARTIST_ROLE] },
    { id: BOB, username: 'bob' },
    { id: ADMIN, username: 'admin', roles: [ADMIN_ROLE] },
  ],
};
