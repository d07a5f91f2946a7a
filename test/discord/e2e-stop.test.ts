// A stop (SIGTERM) of `npm start` with work in its last seconds: a job that finished just before
// the stop still reaches its reply, images and all, with its message recorded (it would otherwise
// sit in the edit throttle when the process exits); a command sent while the bot shuts down is
// answered "the bot is restarting", as the README promises, not left unanswered.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { jobs } from '../../src/db/schema.ts';
import type { BotProcess } from '../support/bot-process.ts';
import { ALICE, BOB, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type StoredMessage } from '../support/discord-stand-in.ts';
import { botFolder, imagesOf, jobIdOf, ledgerOf, replyWhen } from '../support/real-bot.ts';
import { launchAgainst, startedAgainst } from '../support/stand-in-process.ts';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let bot: BotProcess | undefined;

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  // a UNet slow enough that a job is still drawing when the test acts on it
  folder = botFolder({ unetWork: 1024 });
}, 60_000);

afterAll(async () => {
  bot?.kill();
  await standIn?.stop();
  folder?.remove();
});

function launch(): BotProcess {
  bot = launchAgainst(standIn, folder, { DISCORD_GUILD_ID: GUILD });
  return bot;
}

async function start(): Promise<BotProcess> {
  const p = launch();
  await startedAgainst(standIn, p);
  return p;
}

describe('npm start stopped with work in its last seconds', () => {
  it('a stop the moment a job is done: its reply still gets the images, recorded, charged once', async () => {
    const p = await start();
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'stopped after done',
      seed: 5,
      size: '256x256',
      steps: 30,
    });
    // the reply that names the job, whatever it says yet: on an idle machine this job ends before its
    // first progress edit (2 s), so "Drawing" may never show; its final edit then waits in the throttle
    const jobId = jobIdOf(await replyWhen(standIn, i, (m) => jobIdOf(m) !== undefined));
    await p.waitForLog('job done', 120_000);
    expect(await p.stop('SIGTERM')).toBe(0);
    bot = undefined;

    const reply = standIn.original(i) as StoredMessage;
    expect(reply.content).toContain('**Done**');
    expect((await imagesOf(standIn, reply)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '5-base.png 256x256',
      '5-hires.png 512x512',
    ]);
    const database = await openDatabase({ pgliteDir: folder.env.PGLITE_DIR });
    try {
      const [row] = await database.db.select().from(jobs).where(eq(jobs.id, jobId));
      expect(row?.status).toBe('done');
      expect(row?.resultMessageIds).toEqual([reply.id]);
      const rows = (await ledgerOf(database.db, GUILD, ALICE)).filter((r) => r.jobId === jobId);
      expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
    } finally {
      await database.close();
    }
  }, 240_000);

  it('a stop while the bot still starts waits for the start to end, then stops cleanly', async () => {
    // Discord answers the start's command check after 3 s (a rate limit): connected, still starting
    standIn.rest.rateLimit('GET /applications/:app/guilds/:guild/commands', 1, 3);
    const p = launch();
    await p.waitForLog('connected to Discord');
    // (a process with no handler yet is killed by the signal: exit code null)
    expect(await p.stop('SIGTERM')).toBe(0);
    bot = undefined;
    const said = p.lines().map((l) => l.msg);
    expect(said).toContain('shutting down');
    // the start ended (its commands checked) before the stop ran, and the stop ended it all
    const checked = said.findIndex((m) => m.startsWith('slash commands'));
    expect(checked).toBeGreaterThan(said.indexOf('shutting down'));
    expect(said.at(-1)).toBe('stopped');
  }, 240_000);

  it('a command sent while the bot shuts down is answered "the bot is restarting", ephemerally', async () => {
    const p = await start();
    // a long job: the stop waits for it to be interrupted, which keeps the shutdown open a while
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'long', size: '512x512', steps: 50 });
    await replyWhen(standIn, i, (m) => m.content.includes('**Drawing**'));
    const stopping = p.stop('SIGTERM');
    await p.waitForLog('shutting down', 10_000);
    const late = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'during shutdown' });
    expect(await stopping).toBe(0);
    bot = undefined;
    const answer = standIn.original(late);
    expect(answer?.content).toBe('⚠️ The bot is restarting; try again in a minute.');
    expect((answer?.flags ?? 0) & 64).toBe(64);
  }, 240_000);
});
