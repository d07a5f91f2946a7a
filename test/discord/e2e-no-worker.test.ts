// A gateway (PROCESS_ROLE=gateway, in this process, on a PostgreSQL database of its own) with no
// GPU worker: a member's waiting job says so, /queue and /settings show says so, the log warns
// once per outage; a worker's row in worker_models (what a starting worker writes) takes the note
// away, and the row deleted (a clean stop) brings it back. No worker runs here, so the job stays
// queued throughout; test/scale/gateway-workers.test.ts runs real workers.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_WORKER_QUEUE_NOTE } from '../../src/discord/render/info.ts';
import { NO_WORKER_NOTE } from '../../src/discord/render/status.ts';
import { publishWorkerModel, removeWorker } from '../../src/jobs/worker-models.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { ADMIN, ALICE, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type Injected } from '../support/discord-stand-in.ts';
import { until } from '../support/job-service.ts';
import { hasContent, isFinished, type RealBot, replyWhen, startRealBot } from '../support/real-bot.ts';

let standIn: DiscordStandIn;
let t: TestDatabase;
let gateway: RealBot;

beforeAll(async () => {
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  t = await freshDatabase('postgres');
  gateway = await startRealBot(standIn, {
    PROCESS_ROLE: 'gateway',
    DATABASE_URL: (t.location as { url: string }).url,
    DISCORD_GUILD_ID: GUILD,
  });
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await standIn?.stop();
  await t?.destroy();
});

const WARNING = 'jobs are waiting and no GPU worker is online: start one (PROCESS_ROLE=worker)';
const BACK = 'a GPU worker is online again: the waiting jobs start';
const logged = (msg: string) => gateway.logs.filter((l) => l.msg === msg);
const answer = async (i: Injected) => (await replyWhen(standIn, i, hasContent, 'an answer')).content;

describe('a gateway with no GPU worker', () => {
  it('tells the member and the admin, and takes the note away while a worker is live', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'waiting for a GPU', size: '256x256' });
    // the first reply says it at once: the gateway looked as it started
    const first = await replyWhen(standIn, i, (m) => m.content.includes('**Queued**'), 'the queued reply');
    expect(first.content.split('\n').slice(0, 2)).toEqual([
      expect.stringMatching(/^⏳ \*\*Queued\*\* · position 1 · job `\w+`$/),
      NO_WORKER_NOTE,
    ]);
    expect(await answer(standIn.slash(GUILD, ALICE, 'queue', {}))).toContain(NO_WORKER_QUEUE_NOTE);
    expect(await answer(standIn.slash(GUILD, ADMIN, 'settings show', {}))).toContain(
      'GPU workers online: **none**',
    );
    await until(() => logged(WARNING).length > 0, 15_000);

    // a worker starts (its row, as it writes it): the note goes, the job still waits
    await publishWorkerModel(t.db, 'worker-1', { name: 'tiny', hash: 'abcd' });
    const live = await replyWhen(
      standIn,
      i,
      (m) => !m.content.includes('GPU worker'),
      'the note gone',
      20_000,
    );
    expect(live.content).toContain('⏳ **Queued** · position 1');
    await until(() => logged(BACK).length > 0, 15_000);
    expect(logged(BACK)[0]).toMatchObject({ workers: 1 });
    expect(await answer(standIn.slash(GUILD, ADMIN, 'settings show', {}))).toContain('GPU workers online: 1');
    expect(await answer(standIn.slash(GUILD, ALICE, 'queue', {}))).not.toContain('GPU worker');

    // it stops cleanly (its row deleted): the note is back, and the admin warned again
    await removeWorker(t.db, 'worker-1');
    await replyWhen(standIn, i, (m) => m.content.includes(NO_WORKER_NOTE), 'the note back', 20_000);
    await until(() => logged(WARNING).length > 1, 15_000);
    // one warning per outage, not one per job or per look
    expect(logged(WARNING)).toHaveLength(2);
    expect(logged(WARNING)[0]).toMatchObject({ queued: 1, level: 40 });

    // a worker that died (its row silent past 30 s) counts as none too
    await publishWorkerModel(t.db, 'crashed', { name: 'tiny', hash: 'abcd' });
    await t.db.execute(sql`update worker_models set seen_at = now() - interval '31 seconds'`);
    await new Promise((r) => setTimeout(r, 6_000)); // more than one look of the gateway (5 s)
    expect(standIn.original(i)?.content).toContain(NO_WORKER_NOTE);
    expect(logged(BACK)).toHaveLength(1);

    standIn.click(first, `hb:cancel:${/job `(\w+)`/.exec(first.content)?.[1]}`, ALICE);
    const ended = await replyWhen(standIn, i, isFinished, 'the cancelled reply');
    expect(ended.content).toContain('**Cancelled**');
    expect(ended.content).not.toContain('GPU worker');
  }, 120_000);
});
