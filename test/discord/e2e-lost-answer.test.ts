// Discord did what the bot asked but its answer was lost (a 500 after it acted), and discord.js
// retried: the bot must go by what the member sees. A first reply that was posted is followed to
// the end (the retry's 40060 says it exists), not cancelled; a result that reached the reply is not
// posted a second time in the channel.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jobs } from '../../src/db/schema.ts';
import { ALICE, BOB, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type StoredMessage } from '../support/discord-stand-in.ts';
import {
  botFolder,
  imagesOf,
  jobIdOf,
  ledgerOf,
  type RealBot,
  replyWhen,
  spent,
  startRealBot,
} from '../support/real-bot.ts';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let real: RealBot;

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  folder = botFolder();
  real = await startRealBot(standIn, { ...folder.env, DISCORD_GUILD_ID: GUILD });
}, 180_000);

afterAll(async () => {
  await real?.stop();
  await standIn?.stop();
  folder?.remove();
});

const db = () => real.services.database.db;
const CALLBACK = 'POST /interactions/:id/:token/callback';
const EDIT = 'PATCH /webhooks/:app/:token/messages/:message';

/** The job's row once it is done, with its result recorded. */
async function doneJob(jobId: string) {
  return vi.waitFor(
    async () => {
      const [row] = await db().select().from(jobs).where(eq(jobs.id, jobId));
      if (row?.status !== 'done' || !row.resultMessageIds?.length) throw new Error('not recorded yet');
      return row;
    },
    { timeout: 90_000, interval: 200 },
  );
}

describe('the first reply taken by Discord, its answer lost', () => {
  it.each([
    ['the reply itself', 0],
    // past the bot's 2 s budget it defers first: the deferral is what Discord takes
    ['the deferral', 2_500],
  ])(
    'lost at %s: the retry gets 40060, the job runs to done in that reply, charged once',
    async (_, sentMsAgo) => {
      const i = standIn.slash(
        GUILD,
        BOB,
        'imagine',
        { prompt: 'lost answer', seed: 21, size: '256x256', steps: 4 },
        { sentMsAgo },
      );
      // (set before the gateway delivers it: the bot cannot have answered yet)
      standIn.rest.loseAnswers(CALLBACK, { token: i.token, times: 1 });
      try {
        const done = await replyWhen(standIn, i, (m) => m.content.includes('**Done**'));
        const jobId = jobIdOf(done);
        // Discord acted on the first callback, answered 500; the retry was told it was acknowledged
        const callbacks = standIn.requests({ token: i.token }).filter((r) => r.route === CALLBACK);
        expect(callbacks.map((r) => r.status)).toEqual([500, 400]);
        expect((await imagesOf(standIn, done)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
          '21-base.png 256x256',
          '21-hires.png 512x512',
        ]);
        const row = await doneJob(jobId);
        expect(row.resultMessageIds).toEqual([done.id]);
        const rows = (await ledgerOf(db(), GUILD, BOB)).filter((r) => r.jobId === jobId);
        expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
        expect(spent(rows)).toBe(row.cost);
        // nothing in the channel, and no "something went wrong" follow-up
        expect(
          standIn
            .requests()
            .filter(
              (r) =>
                r.route === 'POST /channels/:channel/messages' || r.route === 'POST /webhooks/:app/:token',
            )
            .filter((r) => String((r.body as { content?: string } | null)?.content).includes(jobId)),
        ).toEqual([]);
        expect(
          standIn.requests({ token: i.token }).some((r) => r.route === 'POST /webhooks/:app/:token'),
        ).toBe(false);
      } finally {
        standIn.rest.loseAnswers(CALLBACK, undefined);
      }
    },
    120_000,
  );
});

describe('edits of the reply applied by Discord, their answers lost', () => {
  it('the result reaches the reply: it is recorded there, not posted again in the channel, charged once', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'twice',
      seed: 22,
      size: '256x256',
      steps: 4,
    });
    // every edit of the reply (and each of discord.js's retries) is applied, then answered 500
    standIn.rest.loseAnswers(EDIT, { token: i.token, times: 1_000 });
    try {
      const queued = await replyWhen(standIn, i, (m) => m.content.includes('job `'));
      const jobId = jobIdOf(queued);
      const row = await doneJob(jobId);
      const reply = standIn.original(i) as StoredMessage;
      expect(reply.content).toContain('**Done**');
      expect((await imagesOf(standIn, reply)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
        '22-base.png 256x256',
        '22-hires.png 512x512',
      ]);
      expect(row.resultMessageIds).toEqual([reply.id]);
      // the final edit was answered 500, as every edit was
      expect(
        standIn
          .requests({ token: i.token })
          .filter((r) => r.route === EDIT)
          .map((r) => r.status),
      ).toContain(500);
      expect(standIn.requests({ token: i.token }).some((r) => r.route === EDIT && r.status !== 500)).toBe(
        false,
      );
      // one delivery: no channel post, no follow-up
      const posts = standIn
        .requests()
        .filter(
          (r) => r.route === 'POST /channels/:channel/messages' || r.route === 'POST /webhooks/:app/:token',
        )
        .filter((r) => String((r.body as { content?: string } | null)?.content).includes(jobId));
      expect(posts).toEqual([]);
      const rows = (await ledgerOf(db(), GUILD, ALICE)).filter((r) => r.jobId === jobId);
      expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
      expect(spent(rows)).toBe(row.cost);
    } finally {
      standIn.rest.loseAnswers(EDIT, undefined);
    }
  }, 120_000);
});
