// Scale-out as the README sets it up: one `gateway` and two `worker` processes, each started as
// `npm start` starts it (test/support/bot-process.ts), on a fresh PostgreSQL database of their
// own and the machine's Redis under a prefix of their own, against the Discord stand-in. The
// workers load the tiny model and answer through Discord's REST API only. Until one is up, and
// once the last has stopped, members' waiting jobs say that no GPU worker is online. A job whose
// worker is killed or stopped mid-job says it is queued again until a worker takes it.
import { asc } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JobRow, jobs, usageLedger, workerModels } from '../../src/db/schema.ts';
import { HANDED_BACK_NOTE, NO_WORKER_NOTE } from '../../src/discord/render/status.ts';
import { type BotProcess, startBotProcess } from '../support/bot-process.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { ADMIN, ALICE, BOB, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type Injected, type StoredMessage } from '../support/discord-stand-in.ts';
import { until } from '../support/job-service.ts';
import { botFolder, componentIds, imagesOf, isFinished, jobIdOf, replyWhen } from '../support/real-bot.ts';
import { forgetRedisPrefix, redisPrefix, roleEnv, type ScaleOut, startWorker } from '../support/scale-out.ts';

const prefix = redisPrefix('scale');

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let t: TestDatabase;
let gateway: BotProcess;
const workers: { p: BotProcess; instance: string }[] = [];
/** The worker left after the other one was killed. */
let survivor: (typeof workers)[number] | undefined;
let victim: (typeof workers)[number] | undefined;

/** This test's gateway and workers (once beforeAll has made their parts). */
const scale = (): ScaleOut => ({
  folder,
  standIn,
  databaseUrl: (t.location as { url: string }).url,
  prefix,
  guildId: GUILD,
  env: { USER_MAX_JOBS: '4' },
});

async function addWorker(): Promise<void> {
  workers.push(await startWorker(scale()));
}

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  folder = botFolder({ unetWork: 1024 });
  t = await freshDatabase('postgres');
  gateway = startBotProcess(folder.dir, roleEnv(scale(), 'gateway'));
  await gateway.waitForLog(['slash commands registered', 'slash commands unchanged']);
}, 180_000);

afterAll(async () => {
  gateway?.kill();
  for (const w of workers) w.p.kill();
  await standIn?.stop();
  await t?.destroy();
  folder?.remove();
  await forgetRedisPrefix(prefix);
});

const rows = async (): Promise<JobRow[]> => t.db.select().from(jobs).orderBy(asc(jobs.startedAt));
const imagine = (user: string, prompt: string, steps: number): Injected =>
  standIn.slash(GUILD, user, 'imagine', { prompt, seed: 7, size: '256x256', steps });
const NO_WORKER_WARNING = 'jobs are waiting and no GPU worker is online: start one (PROCESS_ROLE=worker)';
const gatewayLogged = (msg: string) => gateway.lines().filter((l) => l.msg === msg);
const TOLD = 'told the member their job is queued again';
/** A signal to a worker's process group (SIGSTOP: frozen, as a worker busy elsewhere for a while). */
const signal = (w: (typeof workers)[number] | undefined, sig: NodeJS.Signals) =>
  process.kill(-(w?.p.child.pid as number), sig);

/** A reply that says its job is queued again, with its cancel button and no stale preview. */
function expectQueuedAgain(m: StoredMessage | undefined, id: string): void {
  expect(m?.content.split('\n').slice(0, 2)).toEqual([
    `⏳ **Queued again** · job \`${id}\``,
    HANDED_BACK_NOTE,
  ]);
  expect(m?.content).not.toContain('**Drawing**');
  expect(m?.attachments).toEqual([]);
  expect(componentIds(m as StoredMessage)).toEqual([`hb:cancel:${id}`]);
}

/** A done reply with the base image and its hires pass. */
async function expectImages(m: StoredMessage): Promise<void> {
  expect(m.content).toContain('**Done**');
  expect((await imagesOf(standIn, m)).map((x) => `${x.width}x${x.height}`)).toEqual(['256x256', '512x512']);
}

describe('one gateway, two workers, one queue in PostgreSQL', () => {
  it('eight jobs from three members: both workers run them, in the fair order, each with two images', async () => {
    expect(gateway.lines().map((l) => l.msg)).not.toContain('model loaded');
    // queued before any worker is up, so the order they run in is the queue's alone
    const sent: [string, Injected][] = [];
    for (const [user, n] of [
      [ALICE, 4],
      [BOB, 2],
      [ADMIN, 2],
    ] as const) {
      for (let i = 1; i <= n; i++) sent.push([`${user}-${i}`, imagine(user, `${user} ${i}`, 6)]);
    }
    // no worker yet: each member is told, and the admin once in the gateway's log
    for (const [, i] of sent) {
      const queued = await replyWhen(standIn, i, (m) => m.content.includes('**Queued**'));
      expect(queued.content).toContain(NO_WORKER_NOTE);
    }
    await until(() => gatewayLogged(NO_WORKER_WARNING).length > 0, 15_000);
    await addWorker();
    await addWorker();
    for (const w of workers) expect(w.p.lines().map((l) => l.msg)).toContain('model loaded');
    // the gateway's session is the only one: the workers use REST alone
    expect(standIn.identifies).toBe(1);
    const finals = await Promise.all(
      sent.map(([, i]) => replyWhen(standIn, i, isFinished, 'a final reply', 240_000)),
    );
    for (const m of finals) {
      expect(m.content).toContain('**Done**');
      expect((await imagesOf(standIn, m)).map((x) => `${x.width}x${x.height}`)).toEqual([
        '256x256',
        '512x512',
      ]);
    }
    expect(gatewayLogged(NO_WORKER_WARNING)).toHaveLength(1);
    await until(
      () => gatewayLogged('a GPU worker is online again: the waiting jobs start').length === 1,
      15_000,
    );
    const ran = await rows();
    expect(ran.map((r) => r.status)).toEqual(Array(8).fill('done'));
    // round-robin across members: nobody's second job before everyone's first, and so on; a
    // member's k-th job has turn k, and jobs of one turn run in the order they were queued (the
    // gateway may take the eight commands in any order)
    const queuedOrder = [...ran].sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime());
    const count = new Map<string, number>();
    const turn = new Map<string, number>();
    for (const r of queuedOrder) {
      count.set(r.userId, (count.get(r.userId) ?? 0) + 1);
      turn.set(r.id, count.get(r.userId) as number);
    }
    const fair = [...queuedOrder].sort((x, y) => (turn.get(x.id) as number) - (turn.get(y.id) as number));
    expect(ran.map((r) => r.id)).toEqual(fair.map((r) => r.id));
    const name = { [ALICE]: 'A', [BOB]: 'B', [ADMIN]: 'C' } as Record<string, string>;
    const users = ran.map((r) => name[r.userId]).join('');
    for (const round of [users.slice(0, 3), users.slice(3, 6)])
      expect([...round].sort().join('')).toBe('ABC');
    expect(users.slice(6)).toBe('AA');
    const owners = new Set(ran.map((r) => r.owner));
    expect(owners).toEqual(new Set(workers.map((w) => w.instance)));
    // a finished job's button, clicked on the gateway: all it needs is in the database, and the
    // infotext names the model the workers loaded (the gateway loaded none)
    const click = standIn.click(
      finals[0] as StoredMessage,
      `hb:params:${jobIdOf(finals[0] as StoredMessage)}`,
      BOB,
    );
    const answer = await replyWhen(standIn, click, (m) => m.content !== '', 'the parameters');
    expect(answer.content).toContain(
      'Steps: 6, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 7',
    );
    expect(answer.content).toContain('Model: tiny');
  }, 300_000);

  it('a worker killed mid-job: its reply says queued again, then the other one finishes it in the same reply', async () => {
    const i = imagine(ALICE, 'a long one', 50);
    const drawing = await replyWhen(standIn, i, (m) => m.content.includes('**Drawing**'), 'drawing', 60_000);
    const id = jobIdOf(drawing);
    const [row] = (await rows()).filter((r) => r.id === id);
    victim = workers.find((w) => w.instance === row?.owner);
    survivor = workers.find((w) => w !== victim);
    expect(victim && survivor).toBeTruthy();
    // the other worker cannot take the job for now (frozen): it waits in the queue meanwhile
    signal(survivor, 'SIGSTOP');
    try {
      victim?.p.kill();
      // its heartbeat goes stale (30 s): the gateway puts the job back and says so in its reply
      const again = await replyWhen(
        standIn,
        i,
        (m) => m.content.includes('**Queued again**'),
        'queued again',
        90_000,
      );
      expect(again.id).toBe(drawing.id);
      expectQueuedAgain(again, id);
      // (its log line comes once Discord has answered the edit)
      await until(() => gateway.lines().some((l) => l.msg === TOLD && l.jobId === id), 5_000);
      expect((await rows()).find((r) => r.id === id)).toMatchObject({ status: 'queued' });
    } finally {
      signal(survivor, 'SIGCONT');
    }
    // the survivor takes it and its follower paints the reply from there on
    const done = await replyWhen(standIn, i, isFinished, 'the taken-over job', 240_000);
    await expectImages(done);
    expect(done.id).toBe(drawing.id);
    const [after] = (await rows()).filter((r) => r.id === id);
    expect(after).toMatchObject({ status: 'done', owner: survivor?.instance, attempts: 2 });
  }, 300_000);

  it('a cancel clicked on the gateway stops the job running on a worker', async () => {
    const i = imagine(BOB, 'stop me', 50);
    const drawing = await replyWhen(standIn, i, (m) => m.content.includes('**Drawing**'), 'drawing', 60_000);
    const id = jobIdOf(drawing);
    standIn.click(drawing, `hb:cancel:${id}`, BOB);
    const ended = await replyWhen(standIn, i, isFinished, 'the cancelled reply', 60_000);
    expect(ended.content).toContain('**Cancelled**');
    const [row] = (await rows()).filter((r) => r.id === id);
    expect(row?.status).toBe('cancelled');
    // stopped on the worker, between two steps: it settled the job and answered the member
    expect(row?.owner).toBe(survivor?.instance);
    expect(survivor?.p.lines().some((l) => l.msg === 'job cancelled' && l.jobId === id)).toBe(true);
    expect(gateway.lines().some((l) => l.msg === 'job cancelled')).toBe(false);
  }, 120_000);

  it('the last worker stopped cleanly mid-job: the reply says queued again, its row goes, the next job says no GPU worker is online, and a new worker runs both', async () => {
    const h = imagine(BOB, 'stopped under me', 50);
    const drawing = await replyWhen(standIn, h, (m) => m.content.includes('**Drawing**'), 'drawing', 60_000);
    const id = jobIdOf(drawing);
    const warnings = gatewayLogged(NO_WORKER_WARNING).length;
    expect(await survivor?.p.stop('SIGTERM')).toBe(0);
    // said by the stopping worker itself, before it handed the job back and exited
    expectQueuedAgain(standIn.original(h), id);
    expect(survivor?.p.lines().filter((l) => l.msg === TOLD && l.jobId === id)).toHaveLength(1);
    expect((await rows()).find((r) => r.id === id)).toMatchObject({
      status: 'queued',
      owner: survivor?.instance,
    });
    // the killed worker's row stays, silent (stale) since; the stopped one's is gone
    expect((await t.db.select().from(workerModels)).map((r) => r.instanceId)).toEqual([victim?.instance]);
    const i = imagine(BOB, 'nobody to draw me', 6);
    // the gateway looks every 5 s: said in the first reply, or in an edit soon after
    const waiting = await replyWhen(
      standIn,
      i,
      (m) => m.content.includes(NO_WORKER_NOTE),
      'the note',
      20_000,
    );
    // behind the job handed back
    expect(waiting.content).toContain('**Queued** · position 2');
    await until(() => gatewayLogged(NO_WORKER_WARNING).length === warnings + 1, 15_000);
    // still queued again: nothing else touched that reply while no worker was up
    expectQueuedAgain(standIn.original(h), id);
    // a worker comes back: the job handed back ends in its own reply, with its images
    await addWorker();
    const done = await replyWhen(standIn, h, isFinished, 'the handed-back job', 240_000);
    expect(done.id).toBe(drawing.id);
    await expectImages(done);
    await expectImages(await replyWhen(standIn, i, isFinished, 'the job queued behind it', 240_000));
  }, 360_000);

  it('the ledger balances: each job reserved once, committed if done, else refunded', async () => {
    const all = await rows();
    const ledger = await t.db.select().from(usageLedger);
    expect(all).toHaveLength(12);
    for (const row of all) {
      const own = ledger.filter((l) => l.jobId === row.id);
      expect(own.filter((l) => l.kind === 'reserve')).toHaveLength(1);
      expect(own.filter((l) => l.kind !== 'reserve').map((l) => l.kind)).toEqual([
        row.status === 'done' ? 'commit' : 'refund',
      ]);
    }
    for (const user of [ALICE, BOB, ADMIN]) {
      const charged = ledger.filter((l) => l.userId === user).reduce((s, l) => s + l.units, 0);
      const doneCost = all
        .filter((r) => r.userId === user && r.status === 'done')
        .reduce((s, r) => s + r.cost, 0);
      expect(charged).toBeCloseTo(doneCost, 9);
    }
  });
});
