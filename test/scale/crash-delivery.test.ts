// Scale-out (one gateway, two GPU workers, PostgreSQL, Redis), each process as `npm start` starts
// it: the worker that drew a job is killed (SIGKILL) after the job is done and charged, before
// its final edit reached Discord (the stand-in holds it, unanswered and undone). Once its heartbeat
// is stale, the gateway and the other worker both recover; one of them queues the job again, the
// other worker draws it again and edits the same reply with its images, charged once.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobs } from '../../src/db/schema.ts';
import { type BotProcess, startBotProcess } from '../support/bot-process.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { ALICE, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn } from '../support/discord-stand-in.ts';
import { until } from '../support/job-service.ts';
import { botFolder, imagesOf, isFinished, jobIdOf, ledgerOf, replyWhen } from '../support/real-bot.ts';
import { forgetRedisPrefix, redisPrefix, roleEnv, type ScaleOut, startWorker } from '../support/scale-out.ts';

const prefix = redisPrefix('crash-delivery');
const EDITS = 'PATCH /webhooks/:app/:token/messages/:message';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let t: TestDatabase;
const processes: BotProcess[] = [];
const workers: { p: BotProcess; instance: string }[] = [];

/** This test's gateway and workers (once beforeAll has made their parts). */
const scale = (): ScaleOut => ({
  folder,
  standIn,
  databaseUrl: (t.location as { url: string }).url,
  prefix,
  guildId: GUILD,
});

beforeAll(async () => {
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  folder = botFolder({ unetWork: 1024 });
  t = await freshDatabase('postgres');
  const gateway = startBotProcess(folder.dir, roleEnv(scale(), 'gateway'));
  processes.push(gateway);
  await gateway.waitForLog(['slash commands registered', 'slash commands unchanged']);
  for (let n = 0; n < 2; n++) {
    const worker = await startWorker(scale());
    processes.push(worker.p);
    workers.push(worker);
  }
}, 180_000);

afterAll(async () => {
  for (const p of processes) p.kill();
  await standIn?.stop();
  await t?.destroy();
  folder?.remove();
  await forgetRedisPrefix(prefix);
});

describe('a GPU worker killed between the end of a job and its delivery', () => {
  it('another worker draws it again and delivers it once, in its reply, charged once', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', {
      prompt: 'lost worker',
      seed: 9,
      size: '256x256',
      steps: 30,
    });
    const named = await replyWhen(standIn, i, (m) => jobIdOf(m) !== undefined, 'the reply', 60_000);
    const jobId = jobIdOf(named);
    standIn.rest.hold(EDITS, i.token);
    const doneBy = () =>
      workers.find((w) => w.p.lines().some((l) => l.msg === 'job done' && l.jobId === jobId));
    await until(() => doneBy() !== undefined, 120_000);
    const victim = doneBy() as (typeof workers)[number];
    const survivor = workers.find((w) => w !== victim);
    victim.p.kill();
    await victim.p.exited;
    standIn.rest.hold(EDITS, undefined);
    const [crashed] = await t.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(crashed).toMatchObject({ status: 'done', resultMessageIds: null, owner: victim.instance });
    // (a crash a minute ago, just after its end: the next recovery passes take it, not one 30 s
    // from now)
    await t.db
      .update(jobs)
      .set({ heartbeatAt: sql`now() - interval '1 minute'`, finishedAt: sql`now() - interval '1 minute'` })
      .where(eq(jobs.id, jobId));

    const delivered = await replyWhen(standIn, i, isFinished, 'the redrawn job', 180_000);
    expect(delivered.id).toBe(named.id);
    expect(delivered.content).toContain('**Done**');
    expect((await imagesOf(standIn, delivered)).map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      '9-base.png 256x256',
      '9-hires.png 512x512',
    ]);
    await until(async () => {
      const [row] = await t.db.select().from(jobs).where(eq(jobs.id, jobId));
      return row?.resultMessageIds?.[0] === delivered.id;
    }, 10_000);
    const [after] = await t.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(after).toMatchObject({ status: 'done', owner: survivor?.instance, attempts: 2 });
    const ledger = (await ledgerOf(t.db, GUILD, ALICE)).filter((r) => r.jobId === jobId);
    expect(ledger.map((r) => [r.kind, r.units])).toEqual([
      ['reserve', after?.cost],
      ['commit', 0],
    ]);
    const posts = standIn
      .requests({ route: 'POST /channels/:channel/messages' })
      .filter((r) => String((r.body as { content?: string })?.content).includes(jobId));
    expect(posts).toEqual([]);
  }, 300_000);
});
