// The real bot with the real services, in this process, wired as src/main.ts wires them: settings
// from an environment, the database (PGlite in a folder, migrated), the engine worker on a tiny
// model, the job service, the front end's backend over them, and startBot against the stand-in.
// Tests read the log lines and reach the database the bot uses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import sharp from 'sharp';
import { loadConfig } from '../../src/config.ts';
import type { Db } from '../../src/db/client.ts';
import { type LedgerRow, usageLedger } from '../../src/db/schema.ts';
import { readPngText } from '../../src/diffusion/png-text.ts';
import { type RunningBot, startBot } from '../../src/discord/bot.ts';
import { createLogger } from '../../src/log.ts';
import { type Services, startServices } from '../../src/services.ts';
import type { LogLine } from './discord-bot.ts';
import type { DiscordStandIn, Injected, StoredMessage } from './discord-stand-in.ts';
import { writeTinyModel } from './tiny-model.ts';

export interface RealBot {
  bot: RunningBot;
  services: Services;
  logs: LogLine[];
  stop(): Promise<void>;
}

/** A folder with a tiny model (`models/tiny`) and room for a PGlite database (`pglite/`). */
export function botFolder(o: { unetWork?: number } = {}): {
  dir: string;
  env: Record<string, string>;
  remove(): void;
} {
  const dir = mkdtempSync(path.join(tmpdir(), 'hiresbot-e2e-'));
  writeTinyModel(path.join(dir, 'models', 'tiny'), { layout: 'optimum', unetWork: o.unetWork ?? 0 });
  return {
    dir,
    env: { MODEL_DIR: path.join(dir, 'models'), PGLITE_DIR: path.join(dir, 'pglite') },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function startRealBot(standIn: DiscordStandIn, env: Record<string, string>): Promise<RealBot> {
  const logs: LogLine[] = [];
  const config = loadConfig({
    DISCORD_TOKEN: standIn.token,
    DISCORD_API_URL: standIn.apiUrl,
    LOG_LEVEL: 'debug',
    ...env,
  });
  const log = createLogger({
    level: config.logLevel,
    secrets: [standIn.token],
    destination: { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  });
  const services = await startServices(config, log);
  let bot: RunningBot;
  try {
    bot = await startBot(config, log, { services: services.frontEnd });
  } catch (err) {
    await services.stop();
    throw err;
  }
  return {
    bot,
    services,
    logs,
    async stop() {
      // the order of src/main.ts's shutdown
      bot.stopCommands();
      await services.stop({ beforeClose: async () => void (await bot.settle(8_000)) });
      await bot.stop();
    },
  };
}

// --- reading what the bot did ------------------------------------------------------------------

/** The job id a status or result message names (`job \`abc\``). */
export const jobIdOf = (m: StoredMessage) => /job `(\w+)`/.exec(m.content)?.[1] as string;

/** The interaction's reply once it satisfies `check`. */
export function replyWhen(
  standIn: DiscordStandIn,
  i: Injected,
  check: (m: StoredMessage) => boolean,
  what = 'the reply',
  timeoutMs = 90_000,
): Promise<StoredMessage> {
  return standIn.waitUntil(
    () => {
      const m = standIn.original(i);
      return m && check(m) ? m : undefined;
    },
    timeoutMs,
    what,
  );
}

/** A job reply in its final state (images, failure or cancellation). */
export const isFinished = (m: StoredMessage): boolean =>
  /\*\*(Done|Re-upscaled|Denoise comparison|Failed|Cancelled)\*\*/.test(m.content);

/** A reply created for the interaction, with something in it (an answer, an error). */
export const hasContent = (m: StoredMessage): boolean => m.content !== '' || m.attachments.length > 0;

export interface ImageInfo {
  filename: string;
  format: string | undefined;
  width: number | undefined;
  height: number | undefined;
  /** The PNG's A1111 `parameters` text, if any. */
  parameters: string | undefined;
}

export async function imagesOf(standIn: DiscordStandIn, m: StoredMessage): Promise<ImageInfo[]> {
  return Promise.all(
    m.attachments.map(async (a) => {
      const bytes = standIn.attachmentBytes(a);
      const meta = await sharp(bytes).metadata();
      return {
        filename: a.filename,
        format: meta.format,
        width: meta.width,
        height: meta.height,
        parameters: meta.format === 'png' ? readPngText(bytes).get('parameters') : undefined,
      };
    }),
  );
}

/** The custom_ids of a message's buttons and menus, row by row. */
export function componentIds(m: StoredMessage): string[] {
  return (m.components as { components: { custom_id: string }[] }[]).flatMap((r) =>
    r.components.map((c) => c.custom_id),
  );
}

/** One member's rows in the real usage ledger of this server, oldest first. */
export async function ledgerOf(db: Db, guildId: string, userId: string): Promise<LedgerRow[]> {
  return db
    .select()
    .from(usageLedger)
    .where(and(eq(usageLedger.guildId, guildId), eq(usageLedger.userId, userId)))
    .orderBy(asc(usageLedger.id));
}

/** The units a member's ledger rows add up to (what today's usage counts). */
export const spent = (rows: LedgerRow[]): number =>
  Math.round(rows.reduce((sum, r) => sum + r.units, 0) * 100) / 100;

/** The allowed_mentions of every message the bot wrote (a reply, an edit, a channel post). */
export function mentionsOfEveryMessage(
  standIn: DiscordStandIn,
): { route: string; parse: unknown; roles: unknown; users: unknown }[] {
  return standIn
    .requests()
    .filter((r) => {
      const body = r.body as { content?: unknown; data?: { content?: unknown } } | null;
      return typeof body?.content === 'string' || typeof body?.data?.content === 'string';
    })
    .map((r) => {
      const body = r.body as { allowed_mentions?: unknown; data?: { allowed_mentions?: unknown } };
      const m = (body.data?.allowed_mentions ?? body.allowed_mentions) as
        | { parse?: unknown; users?: unknown; roles?: unknown }
        | undefined;
      return { route: r.route, parse: m?.parse, roles: m?.roles ?? [], users: m?.users ?? [] };
    });
}
