// `npm start` as a child process against the local Discord stand-in: the environment that points
// it there, and the wait for the end of its start-up.
import { expect, vi } from 'vitest';
import { type BotProcess, startBotProcess } from './bot-process.ts';
import type { DiscordStandIn } from './discord-stand-in.ts';
import type { botFolder } from './real-bot.ts';

/** `npm start` in `folder` (no .env there: everything from the environment), pointed at the stand-in. */
export function launchAgainst(
  standIn: DiscordStandIn,
  folder: ReturnType<typeof botFolder>,
  env: Record<string, string> = {},
): BotProcess {
  return startBotProcess(folder.dir, {
    ...folder.env,
    DISCORD_TOKEN: standIn.token,
    DISCORD_API_URL: standIn.apiUrl,
    LOG_LEVEL: 'info',
    ...env,
  });
}

/**
 * Waits for the end of its start-up: the slash commands checked (the last step; the line is
 * returned) and its gateway session open at the stand-in.
 */
export async function startedAgainst(
  standIn: DiscordStandIn,
  p: BotProcess,
): Promise<{ msg: string; [key: string]: unknown }> {
  const line = await p.waitForLog(['slash commands registered', 'slash commands unchanged']);
  await vi.waitFor(() => expect(standIn.connectedClients).toBe(1), { timeout: 10_000 });
  return line;
}
