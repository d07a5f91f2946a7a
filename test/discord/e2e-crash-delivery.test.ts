// `npm start` killed (SIGKILL) between a job's end and its delivery: the job is done and charged in
// the database, but the reply edit carrying its images never reached Discord (the stand-in holds
// it unanswered and undone). The next start draws it again and delivers it in the same reply,
// images and all, charged once; the start after that delivers nothing again.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { type JobRow, jobs, type LedgerRow } from '../../src/db/schema.ts';
import type { BotProcess } from '../support/bot-process.ts';
import { ALICE, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type StoredMessage } from '../support/discord-stand-in.ts';
import { botFolder, imagesOf, isFinished, jobIdOf, ledgerOf, replyWhen } from '../support/real-bot.ts';
import { launchAgainst, startedAgainst } from '../support/stand-in-process.ts';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let bot: BotProcess | undefined;

const EDITS = 'PATCH /webhooks/:app/:token/messages/:message';

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  folder = botFolder({ unetWork: 1024 });
}, 60_000);

afterAll(async () => {
  bot?.kill();
  await standIn?.stop();
  folder?.remove();
});

async function start(): Promise<BotProcess> {
  const p = launchAgainst(standIn, folder, { DISCORD_GUILD_ID: GUILD });
  bot = p;
  await startedAgainst(standIn, p);
  return p;
}

/** The bot's database, read (and changed) between two runs of the bot. */
async function withDatabase<T>(work: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>) {
  const database = await openDatabase({ pgliteDir: folder.env.PGLITE_DIR });
  try {
    return await work(database.db);
  } finally {
    await database.close();
  }
}

const jobAndLedger = (jobId: string) =>
  withDatabase(async (db) => {
    const [row] = await db.select().from(jobs).where(eq(jobs.id, jobId));
    const ledger = (await ledgerOf(db, GUILD, ALICE)).filter((r) => r.jobId === jobId);
    return { row: row as JobRow, ledger: ledger.map((r: LedgerRow) => [r.kind, r.units]) };
  });

/** Its owner's last heartbeat a minute ago, as a crash a minute back leaves it (just after its end). */
const silentForAMinute = (jobId: string) =>
  withDatabase((db) =>
    db
      .update(jobs)
      .set({ heartbeatAt: sql`now() - interval '1 minute'`, finishedAt: sql`now() - interval '1 minute'` })
      .where(eq(jobs.id, jobId)),
  );

/** The edits of the reply that carried a finished job's text, answered by Discord. */
const finalEdits = (token: string) =>
  standIn
    .requests({ token, route: EDITS })
    .filter(
      (r) => r.status === 200 && String((r.body as { content?: string })?.content).includes('**Done**'),
    );

describe('npm start killed between the end of a job and its delivery', () => {
  it('the next start draws it again and delivers it once, in its reply, charged once', async () => {
    const first = await start();
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'killed before delivery',
      seed: 7,
      size: '256x256',
      steps: 30,
    });
    const named = await replyWhen(standIn, i, (m) => jobIdOf(m) !== undefined);
    const jobId = jobIdOf(named);
    // from now on Discord takes the reply's edits but neither answers nor applies them
    standIn.rest.hold(EDITS, i.token);
    await first.waitForLog('job done', 120_000);
    first.kill();
    await first.exited;
    bot = undefined;
    standIn.rest.hold(EDITS, undefined); // (answered 500 to a dead process; never applied)
    expect(isFinished(standIn.original(i) as StoredMessage)).toBe(false);

    const crashed = await jobAndLedger(jobId);
    expect(crashed.row.status).toBe('done');
    expect(crashed.row.resultMessageIds).toBeNull();
    expect(crashed.ledger).toEqual([
      ['reserve', crashed.row.cost],
      ['commit', 0],
    ]);
    // the crash was a minute ago: past the staleness bound, so the next start takes it at once
    // (else its recovery timer does, 30 to 60 s later)
    await silentForAMinute(jobId);

    const second = await start();
    const delivered = await replyWhen(standIn, i, isFinished, 'the redrawn job’s final edit', 120_000);
    expect(delivered.id).toBe(named.id);
    expect(delivered.content).toContain('**Done**');
    expect((await imagesOf(standIn, delivered)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '7-base.png 256x256',
      '7-hires.png 512x512',
    ]);
    await second.waitForLog('a done job whose images never went out is drawn again');
    // recorded before the stop (a clean stop waits for deliveries in flight)
    expect(await second.stop('SIGTERM')).toBe(0);
    bot = undefined;
    const after = await jobAndLedger(jobId);
    expect(after.row.status).toBe('done');
    expect(after.row.resultMessageIds).toEqual([delivered.id]);
    expect(after.row.interactionToken).toBeNull();
    expect(after.ledger).toEqual([
      ['reserve', crashed.row.cost],
      ['commit', 0],
    ]);
    expect(finalEdits(i.token)).toHaveLength(1);
    const posts = () =>
      standIn
        .requests({ route: 'POST /channels/:channel/messages' })
        .filter((r) => String((r.body as { content?: string })?.content).includes(jobId));
    expect(posts()).toEqual([]);

    // a start after that (its heartbeat long stale again) leaves the delivered job alone
    await silentForAMinute(jobId);
    const requestsBefore = standIn.requests({ token: i.token }).length;
    const third = await start(); // its recovery pass runs before it logs in
    expect(third.lines().some((l) => l.msg === 'a done job whose images never went out is drawn again')).toBe(
      false,
    );
    expect(await third.stop('SIGTERM')).toBe(0);
    bot = undefined;
    expect(standIn.requests({ token: i.token })).toHaveLength(requestsBefore);
    expect(posts()).toEqual([]);
    const last = await jobAndLedger(jobId);
    expect(last.row.attempts).toBe(after.row.attempts);
    expect(last.ledger).toEqual(after.ledger);
  }, 300_000);
});
