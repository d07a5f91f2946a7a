// `npm start` as a newcomer runs it: a child process on src/main.ts, configured by its environment
// alone, against the Discord stand-in. It registers the slash commands (a PUT the first time, only
// a GET the next), answers /imagine with the real engine, and after it is stopped and started again
// on the same PGlite folder the buttons of its old replies still work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { jobs } from '../../src/db/schema.ts';
import type { BotProcess } from '../support/bot-process.ts';
import { ALICE, BOB, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type StoredMessage } from '../support/discord-stand-in.ts';
import {
  botFolder,
  componentIds,
  hasContent,
  imagesOf,
  isFinished,
  ledgerOf,
  mentionsOfEveryMessage,
  replyWhen,
  spent,
} from '../support/real-bot.ts';
import { launchAgainst, startedAgainst } from '../support/stand-in-process.ts';

const GET = 'GET /applications/:app/commands';
const PUT = 'PUT /applications/:app/commands';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let bot: BotProcess | undefined;

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  folder = botFolder();
});

afterAll(async () => {
  bot?.kill();
  await standIn?.stop();
  folder?.remove();
});

/** `npm start` in the bot's folder: no .env there, everything from the environment. */
async function start(at = folder): Promise<BotProcess> {
  const p = launchAgainst(standIn, at);
  bot = p;
  // registration is the last step of start-up; global, as DISCORD_GUILD_ID is unset
  expect(await startedAgainst(standIn, p)).toMatchObject({ scope: 'global' });
  return p;
}

/** SIGTERM to the process group, as systemd sends it, then again, as an impatient operator does. */
async function stop(p: BotProcess) {
  expect(await p.stop('SIGTERM', { repeatAfterMs: 50 })).toBe(0);
  // the whole shutdown ran (database closed), whatever repeats of the signal arrived
  expect(p.lines().map((l) => l.msg)).toContain('shutting down');
  expect(p.lines().at(-1)?.msg).toBe('stopped');
  expect(p.output()).not.toContain(standIn.token);
  bot = undefined;
}

describe('npm start against the stand-in', () => {
  let result: StoredMessage;
  let jobId: string;

  it('registers the commands, answers /imagine with both images, and stops cleanly', async () => {
    const p = await start();
    expect(standIn.requests({ route: GET })).toHaveLength(1);
    expect(standIn.requests({ route: PUT })).toHaveLength(1);
    expect(
      standIn
        .commands()
        .map((c) => c.name)
        .sort(),
    ).toEqual(['compare', 'imagine', 'paste', 'queue', 'quota', 'quota-admin', 'settings']);
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a harbour at night', seed: 77 });
    result = await replyWhen(standIn, i, isFinished, 'the final edit');
    expect(result.content).toContain('**Done**');
    expect(result.content).toContain(
      'Seed 77 · DPM++ 2M Karras · 30 steps · denoise 0.6 · 512×512 → 1024×1024',
    );
    expect(result.content).toContain('Cost 5 units (45 left today)');
    const images = await imagesOf(standIn, result);
    expect(images.map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '77-base.png 512x512',
      '77-hires.png 1024x1024',
    ]);
    expect(images[1]?.parameters).toContain('Seed: 77, Size: 512x512');
    jobId = /job `(\w+)`/.exec(result.content)?.[1] as string;
    expect(componentIds(result)).toContain(`hb:reroll:${jobId}`);
    await stop(p);
  }, 180_000);

  it('started again on the same database: a GET and no PUT, and the old reply’s buttons work', async () => {
    const p = await start();
    await p.waitForLog('slash commands unchanged');
    expect(standIn.requests({ route: GET })).toHaveLength(2);
    expect(standIn.requests({ route: PUT })).toHaveLength(1);

    const reroll = standIn.click(result, `hb:reroll:${jobId}`, BOB);
    const rerolled = await replyWhen(standIn, reroll, isFinished, 'the reroll');
    expect(rerolled.content).toContain('**Done**');
    expect(rerolled.content).not.toContain('Seed 77 ');
    const rerollId = /job `(\w+)`/.exec(rerolled.content)?.[1] as string;

    const pick = standIn.select(result, `hb:upscale:${jobId}`, ['0.7'], ALICE);
    const upscaled = await replyWhen(standIn, pick, isFinished, 'the re-upscale');
    expect(upscaled.content).toContain('🔁 **Re-upscaled**');
    expect((await imagesOf(standIn, upscaled)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '77-hires.png 1024x1024',
    ]);
    const upscaleId = /job `(\w+)`/.exec(upscaled.content)?.[1] as string;

    const params = standIn.click(result, `hb:params:${jobId}`, BOB);
    expect((await replyWhen(standIn, params, hasContent)).content).toContain('Seed: 77');
    standIn.click(result, `hb:delete:${jobId}`, ALICE);
    await standIn.waitUntil(() => (standIn.message(result.id)?.deleted ? true : undefined));
    await stop(p);

    // the ledger the bot kept, read from its PGlite folder once it has stopped
    const database = await openDatabase({ pgliteDir: folder.env.PGLITE_DIR });
    try {
      const alice = await ledgerOf(database.db, GUILD, ALICE);
      const bob = await ledgerOf(database.db, GUILD, BOB);
      // Alice: her image (5) and the hires pass of the re-upscale (1024²·30 / 512²·30 = 4)
      expect(alice.map((r) => [r.jobId, r.kind, r.units])).toEqual([
        [jobId, 'reserve', 5],
        [jobId, 'commit', 0],
        [upscaleId, 'reserve', 4],
        [upscaleId, 'commit', 0],
      ]);
      // Bob pressed 🎲 Reroll: he pays for it
      expect(bob.map((r) => [r.jobId, r.kind])).toEqual([
        [rerollId, 'reserve'],
        [rerollId, 'commit'],
      ]);
      expect(spent(bob)).toBe(5);
      const rows = await database.db.select().from(jobs);
      expect(rows.map((r) => r.status)).toEqual(['done', 'done', 'done']);
    } finally {
      await database.close();
    }
    for (const m of mentionsOfEveryMessage(standIn))
      expect(m, m.route).toMatchObject({ parse: [], users: [] });
  }, 180_000);

  it('stopped while drawing: the reply says the job is queued again, not a progress bar that stands still', async () => {
    // a UNet slow enough to be caught mid-job, in a folder (and database) of its own
    const slow = botFolder({ unetWork: 1024 });
    try {
      const p = await start(slow);
      const i = standIn.slash(GUILD, ALICE, 'imagine', {
        prompt: 'a long night',
        seed: 5,
        size: '256x256',
        steps: 50,
      });
      await replyWhen(standIn, i, (m) => m.content.includes('**Drawing**'), 'the progress');
      await stop(p);
      const reply = standIn.original(i);
      expect(reply?.content).toContain('⏳ **Queued again**');
      expect(reply?.content).toContain('Its GPU worker stopped');
    } finally {
      bot?.kill();
      slow.remove();
    }
  }, 180_000);
});
