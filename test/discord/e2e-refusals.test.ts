// What a member can get wrong, and what must never happen, through the real bot and services:
// refusals are ephemeral and leave the real ledger untouched; a full queue and the per-member
// limit come from the real limiters; a job outliving its token is posted in the channel; nothing
// the bot sends pings anyone it should not; admin commands check permissions on the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ADMIN_ROLE, ALICE, BOB, CHANNEL, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import {
  DiscordStandIn,
  type Injected,
  type StoredMessage,
  TOKEN_LIFETIME_MS,
} from '../support/discord-stand-in.ts';
import { until } from '../support/job-service.ts';
import {
  botFolder,
  hasContent,
  imagesOf,
  isFinished,
  jobIdOf,
  ledgerOf,
  mentionsOfEveryMessage,
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
  // each UNet call does real work, so a 50-step job stays in the queue while the test goes on
  folder = botFolder({ unetWork: 1024 });
  real = await startRealBot(standIn, {
    ...folder.env,
    DISCORD_GUILD_ID: GUILD,
    QUEUE_MAX: '3',
    USER_MAX_JOBS: '2',
  });
  const set = standIn.slash(GUILD, ADMIN, 'settings defaults', { size: '256x256', steps: 6 });
  await replyWhen(standIn, set, hasContent);
}, 180_000);

afterAll(async () => {
  await real?.stop();
  await standIn?.stop();
  folder?.remove();
});

const db = () => real.services.database.db;
const EPHEMERAL = 64;
const answerTo = (i: Injected) => replyWhen(standIn, i, hasContent, 'an answer');
const done = (i: Injected) => replyWhen(standIn, i, isFinished, 'the final edit');

describe('refusals are ephemeral and charge nothing on the real ledger', () => {
  it('a bound a crafted interaction slipped past Discord, and a bad denoise list', async () => {
    const before = await ledgerOf(db(), GUILD, BOB);
    const steps = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x', steps: 99 });
    const tooMany = await answerTo(steps);
    expect(tooMany.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(tooMany.content).toBe('⚠️ steps must be a whole number from 1 to 50 (got 99)');
    const size = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x', size: '4096x4096' });
    expect((await answerTo(size)).content).toMatch(/^⚠️ size /);
    const compare = standIn.slash(GUILD, BOB, 'compare', { prompt: 'x', denoise: '0.5' });
    expect((await answerTo(compare)).content).toBe(
      '⚠️ denoise must list 2 to 4 different values, e.g. 0.3,0.5,0.7 (got "0.5")',
    );
    expect(await ledgerOf(db(), GUILD, BOB)).toEqual(before);
  });

  it('a spent quota says what the job costs and what is left; a blocked member is told so', async () => {
    const before = await ledgerOf(db(), GUILD, BOB);
    await answerTo(standIn.slash(GUILD, ADMIN, 'quota-admin set-user', { user: BOB, units: 1 }));
    try {
      // 30 steps at 256×256 with its 512×512 hires pass: 1.25 units
      const i = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x', steps: 30 });
      const reply = await answerTo(i);
      expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
      expect(reply.content).toMatch(/^⚠️ This job costs 1\.25 units and you have 1 of 1 left today/);
      const quota = await answerTo(standIn.slash(GUILD, BOB, 'quota'));
      expect(quota.content).toContain('You have **1** of 1 units left today (0 used).');
    } finally {
      await answerTo(standIn.slash(GUILD, ADMIN, 'quota-admin set-user', { user: BOB }));
    }
    await answerTo(standIn.slash(GUILD, ADMIN, 'quota-admin block', { user: BOB }));
    try {
      const blocked = await answerTo(standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x' }));
      expect(blocked.content).toBe(
        '⚠️ You are blocked from generating images in this server. Ask a server admin if you think this is a mistake.',
      );
    } finally {
      await answerTo(standIn.slash(GUILD, ADMIN, 'quota-admin unblock', { user: BOB }));
    }
    expect(await ledgerOf(db(), GUILD, BOB)).toEqual(before);
  });

  it('a full queue and the per-member limit; the waiting jobs can be cancelled and are refunded', async () => {
    const slow = { prompt: 'a long job', steps: 50 };
    const first = standIn.slash(GUILD, ALICE, 'imagine', { ...slow, seed: 1 });
    const a1 = await replyWhen(standIn, first, (m) => m.content.includes('job `'));
    const second = standIn.slash(GUILD, ALICE, 'imagine', { ...slow, seed: 2 });
    const a2 = await replyWhen(standIn, second, (m) => m.content.includes('job `'));
    const third = standIn.slash(GUILD, BOB, 'imagine', { ...slow, seed: 3 });
    const b1 = await replyWhen(standIn, third, (m) => m.content.includes('job `'));
    const adminBefore = await ledgerOf(db(), GUILD, ADMIN);

    const full = await answerTo(standIn.slash(GUILD, ADMIN, 'imagine', { prompt: 'one more' }));
    expect(full.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(full.content).toBe('⚠️ The queue is full (3 jobs waiting or running). Try again in a few minutes.');
    const limit = await answerTo(standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'and another' }));
    expect(limit.content).toBe(
      '⚠️ You already have 2 jobs queued or running; wait for one to finish or cancel it (see /queue).',
    );
    const queue = await answerTo(standIn.slash(GUILD, ALICE, 'queue'));
    expect(queue.content).toContain('The queue holds 3 jobs (at most 3).');
    expect(queue.content).toContain(jobIdOf(a1));
    expect(queue.content).toContain(jobIdOf(a2));
    expect(await ledgerOf(db(), GUILD, ADMIN)).toEqual(adminBefore);

    // ✖ Cancel: the owner for her own, an admin for Bob's
    const ids = [jobIdOf(a1), jobIdOf(a2), jobIdOf(b1)];
    standIn.click(a1, `hb:cancel:${ids[0]}`, ALICE);
    standIn.click(a2, `hb:cancel:${ids[1]}`, ALICE);
    standIn.click(b1, `hb:cancel:${ids[2]}`, ADMIN);
    for (const i of [first, second, third]) expect((await done(i)).content).toContain('**Cancelled**');
    const rows = [...(await ledgerOf(db(), GUILD, ALICE)), ...(await ledgerOf(db(), GUILD, BOB))];
    for (const id of ids) {
      const mine = rows.filter((r) => r.jobId === id);
      expect(mine.map((r) => r.kind)).toEqual(['reserve', 'refund']);
      expect(spent(mine)).toBe(0);
    }
  });
});

describe('what only the engine or the database can tell', () => {
  it('a prompt past the 10-chunk cap: the reply says what to change, and nothing is charged', async () => {
    // BREAK closes (and pads) a chunk: 11 chunks in 70 characters, far under MAX_PROMPT_CHARS
    const prompt = Array.from({ length: 11 }, () => 'a cat').join(' BREAK ');
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt });
    const failed = await done(i);
    expect(failed.content).toContain('**Failed**');
    expect(failed.content).toContain(
      'The job stopped: prompt must fit in 10 chunks of 75 tokens, each BREAK starting a new one (got 11 chunks). Nothing was charged.',
    );
    expect(failed.content).not.toContain('something went wrong');
    const rows = (await ledgerOf(db(), GUILD, ALICE)).filter((r) => r.jobId === jobIdOf(failed));
    expect(rows.map((r) => [r.kind, r.units])).toEqual([
      ['reserve', 0.25],
      ['refund', -0.25],
    ]);
    expect(real.logs.filter((l) => l.level >= 50 && l.jobId === jobIdOf(failed))).toEqual([]);
  });

  it('🔁 Re-upscale of an image whose base latent the retention sweep deleted: an ephemeral not-found, no charge', async () => {
    const i = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'an old one', seed: 8 });
    const old = await done(i);
    const jobId = jobIdOf(old);
    // LATENT_RETENTION_DAYS (7) later, as the hourly sweep runs then
    await real.services.jobs.sweep(new Date(Date.now() + 8 * 86_400_000));
    const before = await ledgerOf(db(), GUILD, BOB);
    const pick = standIn.select(old, `hb:upscale:${jobId}`, ['0.5'], BOB);
    const answer = await answerTo(pick);
    expect(answer.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(answer.content).toBe('⚠️ That image is no longer available to upscale.');
    expect(await ledgerOf(db(), GUILD, BOB)).toEqual(before);
    // 🎲 Reroll needs no latent: it still works
    const reroll = standIn.click(old, `hb:reroll:${jobId}`, BOB);
    expect((await done(reroll)).content).toContain('**Done**');
  });
});

describe('a job that finishes after its 15-minute token expired', () => {
  it('is posted as a new channel message naming its owner, pinging nobody else', async () => {
    const prompt = `@everyone @here <@&${ADMIN_ROLE}> <@${BOB}> look`;
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt, seed: 3 });
    const queued = await replyWhen(standIn, i, (m) => m.content.includes('job `'));
    // the edits that follow (progress, final) come at least 2 s later: after the token died
    standIn.advance(TOKEN_LIFETIME_MS + 1_000);
    let posted: StoredMessage;
    try {
      const post = await standIn.waitForRequest(
        (r) => r.route === 'POST /channels/:channel/messages' && r.status === 200,
        90_000,
      );
      posted = standIn.message(post.messageId as string) as StoredMessage;
      const body = post.body as { allowed_mentions: unknown; message_reference?: { message_id: string } };
      expect(posted.channelId).toBe(CHANNEL);
      expect(posted.content.startsWith(`<@${ALICE}> your job finished`)).toBe(true);
      expect(body.allowed_mentions).toEqual({ parse: [], users: [ALICE], replied_user: false });
      expect(body.message_reference?.message_id).toBe(queued.id);
      expect((await imagesOf(standIn, posted)).map((x) => x.filename)).toEqual(['3-base.png', '3-hires.png']);
    } finally {
      standIn.advance(-(TOKEN_LIFETIME_MS + 1_000));
    }
    const jobId = jobIdOf(posted);
    const rows = (await ledgerOf(db(), GUILD, ALICE)).filter((r) => r.jobId === jobId);
    expect(rows.map((r) => r.kind)).toEqual(['reserve', 'commit']);
    // recorded once Discord has answered the post, which the stand-in counted as sent before that
    const recorded = async () => (await real.services.frontEnd.job(jobId))?.resultMessageIds ?? [];
    await until(async () => (await recorded()).length > 0, 10_000);
    expect(await recorded()).toEqual([posted.id]);
    // its buttons work like any other's
    const again = standIn.click(posted, `hb:reroll:${jobId}`, BOB);
    expect((await done(again)).content).toContain('**Done**');
  });
});

describe('admin commands', () => {
  it('refuse a member without Manage Server whose client let the command through', async () => {
    const settingsBefore = await real.services.frontEnd.storedGuildSettings(GUILD);
    const quotaBefore = await real.services.frontEnd.quota.guildDailyUnits(GUILD);
    const set = await answerTo(standIn.slash(GUILD, BOB, 'settings defaults', { steps: 1 }));
    expect(set.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(set.content).toBe('⚠️ You need the Manage Server permission to use /settings.');
    const budget = await answerTo(standIn.slash(GUILD, BOB, 'quota-admin set-guild', { units: 0 }));
    expect(budget.content).toBe('⚠️ You need the Manage Server permission to use /quota-admin.');
    // the admin role's member, in a channel where Discord computed no Manage Server for them
    const crafted = standIn.slash(GUILD, ADMIN, 'settings limits', { max_steps: 1 }, { permissions: 0n });
    expect((await answerTo(crafted)).content).toBe(
      '⚠️ You need the Manage Server permission to use /settings.',
    );
    expect(await real.services.frontEnd.storedGuildSettings(GUILD)).toEqual(settingsBefore);
    expect(await real.services.frontEnd.quota.guildDailyUnits(GUILD)).toEqual(quotaBefore);
  });
});

describe('allowed_mentions', () => {
  it('every message the bot sent in this file pinged nobody but, in a channel post, the job’s owner', () => {
    const sent = mentionsOfEveryMessage(standIn);
    expect(sent.length).toBeGreaterThan(20);
    for (const m of sent) {
      expect(m, m.route).toMatchObject({ parse: [], roles: [] });
      expect(m.users).toEqual(m.route === 'POST /channels/:channel/messages' ? [ALICE] : []);
    }
  });
});
