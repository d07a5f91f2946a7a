// Replies Discord will not take, through the real services: a first reply refused (a late
// acknowledgement) cancels and refunds the job nobody saw; a result whose reply is gone goes to the
// channel instead, charged once, and nobody is told "nothing was charged" for a charged job.
import { and, desc, eq, notInArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jobs } from '../../src/db/schema.ts';
import { ALICE, BOB, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { ACK_WINDOW_MS, DiscordStandIn, type StoredMessage } from '../support/discord-stand-in.ts';
import {
  botFolder,
  hasContent,
  imagesOf,
  jobIdOf,
  ledgerOf,
  type RealBot,
  replyWhen,
  startRealBot,
} from '../support/real-bot.ts';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let real: RealBot;

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  // each UNet call does real work, so a 30-step job is still drawing when the test acts on it
  folder = botFolder({ unetWork: 1024 });
  real = await startRealBot(standIn, { ...folder.env, DISCORD_GUILD_ID: GUILD });
}, 180_000);

afterAll(async () => {
  await real?.stop();
  await standIn?.stop();
  folder?.remove();
});

const db = () => real.services.database.db;

/** A job's row once it has ended (a member's newest job when no id is known). */
async function endedJob(which: { jobId: string } | { userId: string; besides: string[] }) {
  return vi.waitFor(
    async () => {
      const [row] = await db()
        .select()
        .from(jobs)
        .where(
          'jobId' in which
            ? eq(jobs.id, which.jobId)
            : and(eq(jobs.userId, which.userId), notInArray(jobs.id, ['', ...which.besides])),
        )
        .orderBy(desc(jobs.createdAt))
        .limit(1);
      if (!row || row.status === 'queued' || row.status === 'running') throw new Error('not ended yet');
      return row;
    },
    { timeout: 90_000, interval: 200 },
  );
}

describe('a first reply Discord refuses', () => {
  // the stand-in's clock moves past Discord's 3 s as the interaction arrives: every callback for
  // it is answered 10062 Unknown interaction, as Discord answers a late acknowledgement
  it.each([
    ['the reply itself', 0],
    // past the bot's 2 s budget it defers first: the deferral is what Discord refuses
    ['the deferral', 2_500],
  ])(
    'refused at %s: the job is cancelled and refunded, never charged',
    async (_, sentMsAgo) => {
      const besides = (await db().select({ id: jobs.id }).from(jobs)).map((r) => r.id);
      const i = standIn.slash(
        GUILD,
        BOB,
        'imagine',
        { prompt: 'late ack', seed: 11, size: '256x256', steps: 30 },
        { sentMsAgo },
      );
      standIn.advance(ACK_WINDOW_MS + 1_000);
      try {
        const refused = await standIn.waitForRequest(
          (r) => r.route === 'POST /interactions/:id/:token/callback' && r.token === i.token,
          15_000,
        );
        expect(refused.status).toBe(404);
      } finally {
        standIn.advance(-(ACK_WINDOW_MS + 1_000));
      }
      const row = await endedJob({ userId: BOB, besides });
      expect(row.status).toBe('cancelled');
      const rows = (await ledgerOf(db(), GUILD, BOB)).filter((r) => r.jobId === row.id);
      expect(rows.map((r) => [r.kind, r.units])).toEqual([
        ['reserve', row.cost],
        ['refund', -row.cost],
      ]);
      expect(
        real.logs.some(
          (l) => l.msg === 'could not answer the interaction; job cancelled' && l.jobId === row.id,
        ),
      ).toBe(true);
    },
    120_000,
  );
});

describe('a result whose reply cannot be edited', () => {
  it('a reply deleted mid-job: the images go to the channel, charged once, no "nothing was charged"', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'deleted mid-job',
      seed: 3,
      size: '256x256',
      steps: 30,
    });
    // acted on as soon as the reply names the job: on a fast machine a job ends before its first
    // progress edit (2 s), so waiting for "Drawing" could miss it; every later edit meets the failure
    const drawing = await replyWhen(standIn, i, (m) => jobIdOf(m) !== undefined);
    const jobId = jobIdOf(drawing);
    // a moderator deletes it
    (standIn.message(drawing.id) as StoredMessage).deleted = true;
    const post = await standIn.waitForRequest(
      (r) =>
        r.route === 'POST /channels/:channel/messages' &&
        String((r.body as { content?: string }).content).includes(jobId),
      90_000,
    );
    const body = post.body as { content: string; allowed_mentions: unknown };
    expect(body.content.startsWith(`<@${ALICE}> `)).toBe(true);
    expect(body.content).toContain('**Done**');
    expect(body.allowed_mentions).toEqual({ parse: [], users: [ALICE], replied_user: false });
    const posted = standIn.message(post.messageId as string) as StoredMessage;
    expect((await imagesOf(standIn, posted)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '3-base.png 256x256',
      '3-hires.png 512x512',
    ]);
    const row = await endedJob({ jobId });
    expect(row.status).toBe('done');
    await vi.waitFor(
      async () => {
        const [now] = await db().select().from(jobs).where(eq(jobs.id, jobId));
        expect(now?.resultMessageIds).toEqual([posted.id]);
      },
      { timeout: 10_000, interval: 100 },
    );
    const rows = (await ledgerOf(db(), GUILD, ALICE)).filter((r) => r.jobId === jobId);
    expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
    // no ephemeral "something went wrong … nothing was charged" follow-up
    const followUps = standIn
      .requests({ token: i.token })
      .filter((r) => r.route === 'POST /webhooks/:app/:token');
    expect(followUps).toEqual([]);
    expect(hasContent(posted)).toBe(true);
  }, 120_000);

  it('Discord answering 500 to every edit of the reply: the images go to the channel, charged once', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'server gone',
      seed: 12,
      size: '256x256',
      steps: 30,
    });
    // acted on as soon as the reply names the job: on a fast machine a job ends before its first
    // progress edit (2 s), so waiting for "Drawing" could miss it; every later edit meets the failure
    const drawing = await replyWhen(standIn, i, (m) => jobIdOf(m) !== undefined);
    const jobId = jobIdOf(drawing);
    const edits = 'PATCH /webhooks/:app/:token/messages/:message';
    standIn.rest.failWith(edits, {
      token: i.token,
      status: 500,
      code: 0,
      message: '500: Internal Server Error',
    });
    try {
      const post = await standIn.waitForRequest(
        (r) =>
          r.route === 'POST /channels/:channel/messages' &&
          String((r.body as { content?: string }).content).includes(jobId),
        90_000,
      );
      expect((post.body as { content: string }).content).toContain('**Done**');
      const posted = standIn.message(post.messageId as string) as StoredMessage;
      expect((await imagesOf(standIn, posted)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
        '12-base.png 256x256',
        '12-hires.png 512x512',
      ]);
      expect((await endedJob({ jobId })).status).toBe('done');
      const rows = (await ledgerOf(db(), GUILD, ALICE)).filter((r) => r.jobId === jobId);
      expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
      // the edits were refused, not skipped
      expect(standIn.requests({ token: i.token }).some((r) => r.route === edits && r.status === 500)).toBe(
        true,
      );
    } finally {
      standIn.rest.failWith(edits, undefined);
    }
  }, 120_000);
});
