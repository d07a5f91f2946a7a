// A restart with jobs in flight, through the real services: the bot stops while one job draws and
// another waits; the next start on the same PGlite folder takes both over (once their owner's
// heartbeat is stale) and finishes them in their original replies, charging each once.
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { jobs } from '../../src/db/schema.ts';
import { ALICE, BOB, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn } from '../support/discord-stand-in.ts';
import {
  botFolder,
  imagesOf,
  isFinished,
  jobIdOf,
  ledgerOf,
  type RealBot,
  replyWhen,
  startRealBot,
} from '../support/real-bot.ts';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let real: RealBot | undefined;

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  folder = botFolder({ unetWork: 1024 });
});

afterEach(async () => {
  await real?.stop();
  real = undefined;
});

afterAll(async () => {
  await standIn?.stop();
  folder?.remove();
});

const start = () => startRealBot(standIn, { ...folder.env, DISCORD_GUILD_ID: GUILD });

describe('a restart with jobs in flight', () => {
  it('the next start finishes the running and the waiting job in their own replies', async () => {
    real = await start();
    const running = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'a long one',
      seed: 21,
      size: '256x256',
      steps: 50,
    });
    const waiting = standIn.slash(GUILD, BOB, 'imagine', {
      prompt: 'next in line',
      seed: 22,
      size: '256x256',
      steps: 6,
    });
    const drawing = await replyWhen(standIn, running, (m) => m.content.includes('**Drawing**'));
    const queued = await replyWhen(standIn, waiting, (m) => m.content.includes('**Queued**'));
    const ids = [jobIdOf(drawing), jobIdOf(queued)];
    await real.stop();
    real = undefined;

    real = await start();
    expect(standIn.identifies).toBe(2);
    // the stopped process handed both jobs back: the new one takes them over as it starts
    const first = await replyWhen(standIn, running, isFinished, 'the taken-over job’s final edit');
    const second = await replyWhen(standIn, waiting, isFinished, 'the waiting job’s final edit');
    // the same messages, edited through the tokens stored with the jobs
    expect(first.id).toBe(drawing.id);
    expect(second.id).toBe(queued.id);
    expect(first.content).toContain('**Done**');
    expect(second.content).toContain('**Done**');
    expect((await imagesOf(standIn, first)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '21-base.png 256x256',
      '21-hires.png 512x512',
    ]);
    const db = real.services.database.db;
    for (const [id, user] of [
      [ids[0], ALICE],
      [ids[1], BOB],
    ] as const) {
      const [row] = await db
        .select()
        .from(jobs)
        .where(eq(jobs.id, id as string));
      expect(row?.status).toBe('done');
      const rows = (await ledgerOf(db, GUILD, user)).filter((r) => r.jobId === id);
      expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
    }
  }, 180_000);

  it('a job the bot was down too long for is failed, refunded, and its owner told in the channel', async () => {
    real = await start();
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'forgotten',
      seed: 31,
      size: '256x256',
      steps: 50,
    });
    const drawing = await replyWhen(standIn, i, (m) => m.content.includes('**Drawing**'));
    const jobId = jobIdOf(drawing);
    await real.stop();
    real = undefined;
    // the bot stays down for two hours: the job is older than recovery re-queues (1 h)
    const database = await openDatabase({ pgliteDir: folder.env.PGLITE_DIR });
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
    await database.db
      .update(jobs)
      .set({ createdAt: hoursAgo(2), heartbeatAt: hoursAgo(2) })
      .where(eq(jobs.id, jobId));
    await database.close();
    standIn.advance(2 * 3_600_000);
    try {
      real = await start();
      const post = await standIn.waitForRequest(
        (r) =>
          r.route === 'POST /channels/:channel/messages' &&
          String((r.body as { content?: string }).content).includes(jobId),
        60_000,
      );
      const body = post.body as { content: string; allowed_mentions: unknown };
      expect(body.content.startsWith(`<@${ALICE}> `)).toBe(true);
      expect(body.content).toContain(
        'The job stopped: the bot restarted and could not pick it up again in time. Nothing was charged.',
      );
      expect(body.allowed_mentions).toEqual({ parse: [], users: [ALICE] });
    } finally {
      standIn.advance(-2 * 3_600_000);
    }
    const rows = (await ledgerOf(real.services.database.db, GUILD, ALICE)).filter((r) => r.jobId === jobId);
    expect(rows.map((r) => r.kind)).toEqual(['reserve', 'refund']);
  }, 180_000);
});
