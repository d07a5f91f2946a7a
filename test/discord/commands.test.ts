// The slash commands, buttons and menus end to end: the real bot (startBot, router, commands/)
// and discord.js over real sockets to the Discord stand-in; the job service is the scripted
// in-memory one until phase 2 wires the real one.
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunningBot } from '../../src/discord/bot.ts';
import {
  ADMIN,
  ALICE,
  BOB,
  CHANNEL,
  GUILD,
  type LogLine,
  startTestBot,
  TEST_GUILD,
} from '../support/discord-bot.ts';
import {
  DiscordStandIn,
  type Injected,
  type StoredMessage,
  TOKEN_LIFETIME_MS,
} from '../support/discord-stand-in.ts';
import { type ScriptedJob, ScriptedServices } from '../support/front-end-services.ts';

let standIn: DiscordStandIn;
let services: ScriptedServices;
let bot: RunningBot;
let logs: LogLine[];

beforeAll(async () => {
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD] });
  services = new ScriptedServices();
  ({ bot, logs } = await startTestBot(
    standIn,
    { services, editIntervalMs: 200 },
    { DISCORD_GUILD_ID: GUILD },
  ));
});

afterAll(async () => {
  await bot?.stop();
  await standIn?.stop();
});

// after each test too: a nested describe's beforeAll runs before the next beforeEach
function resetServices() {
  services.budget = 50;
  services.charged.clear();
  services.brokenLookup = false;
  services.submitDelayMs = 0;
}
beforeEach(resetServices);
afterEach(resetServices);

const EPHEMERAL = 64;

/** Re-checks until it passes: for what the bot does after its last request (logs, records). */
const eventually = <T>(check: () => T) => vi.waitFor(check, { timeout: 10_000, interval: 20 });

/** The interaction's reply once it satisfies `check`. */
function replyWhen(
  i: Injected,
  check: (m: StoredMessage) => boolean,
  what = 'the reply',
): Promise<StoredMessage> {
  return standIn.waitUntil(
    () => {
      const m = standIn.original(i);
      return m && check(m) ? m : undefined;
    },
    15_000,
    what,
  );
}

/** The first message the bot sent after `i` that is a reply created for `i` (a new reply or followup). */
function createdFor(i: Injected): Promise<StoredMessage> {
  return replyWhen(i, (m) => m.content !== '' || m.attachments.length > 0, 'a reply with content');
}

async function imagine(user: string, options: Record<string, string | number> = {}) {
  const i = standIn.slash(GUILD, user, 'imagine', { prompt: 'a lighthouse at dusk', ...options });
  const job = await services.nextJob();
  await replyWhen(i, (m) => m.content.includes('Queued'));
  return { i, job };
}

async function finished(i: Injected, job: ScriptedJob): Promise<StoredMessage> {
  await job.finish();
  return replyWhen(
    i,
    (m) =>
      m.content.includes('**Done**') || m.content.includes('comparison') || m.content.includes('Re-upscaled'),
  );
}

async function dimensions(m: StoredMessage) {
  return Promise.all(
    m.attachments.map(async (a) => {
      const meta = await sharp(standIn.attachmentBytes(a)).metadata();
      return `${a.filename} ${meta.format} ${meta.width}x${meta.height}`;
    }),
  );
}

function buttons(m: StoredMessage): string[] {
  return (m.components as { components: { custom_id: string }[] }[]).flatMap((r) =>
    r.components.map((c) => c.custom_id),
  );
}

describe('/imagine', () => {
  it('answers at once with the queue position, then edits to both PNGs, the summary and the buttons', async () => {
    const { i, job } = await imagine(ALICE, { seed: 42 });
    expect(job.input.requester).toMatchObject({
      guildId: GUILD,
      channelId: CHANNEL,
      userId: ALICE,
      isAdmin: false,
    });
    expect(job.input.request).toMatchObject({
      prompt: 'a lighthouse at dusk',
      seed: 42,
      steps: 30,
      sampler: 'DPM++ 2M',
      scheduler: 'Karras',
      cfg: 7,
      width: 512,
      height: 512,
      hiresScale: 2,
      upscaler: 'Latent',
      denoise: 0.6,
    });
    expect(job.input.interaction.token).toBe(i.token);
    const ack = standIn.interaction(i).ack;
    expect(ack?.type).toBe(4);
    expect((standIn.original(i)?.flags ?? 0) & EPHEMERAL).toBe(0);

    job.start();
    job.progress({ pass: 'base', step: 10, total: 30 });
    await replyWhen(i, (m) => m.content.includes('Drawing'), 'a progress edit');
    const done = await finished(i, job);
    expect(await dimensions(done)).toEqual(['42-base.png png 512x512', '42-hires.png png 1024x1024']);
    expect(done.content).toContain(
      'Seed 42 · DPM++ 2M Karras · 30 steps · denoise 0.6 · 512×512 → 1024×1024',
    );
    expect(done.content).toContain('12.3 s');
    expect(buttons(done)).toEqual([
      `hb:reroll:${job.jobId}`,
      `hb:params:${job.jobId}`,
      `hb:delete:${job.jobId}`,
      `hb:upscale:${job.jobId}`,
    ]);
    await eventually(() => expect(services.recorded.get(job.jobId)).toEqual([done.id]));
  });

  it('refuses a bound that a crafted interaction slipped past Discord, ephemerally and at no charge', async () => {
    const before = services.submissions.length;
    const i = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x', steps: 99 });
    const reply = await createdFor(i);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(reply.content).toBe('⚠️ steps must be a whole number from 1 to 50 (got 99)');
    expect(services.submissions.length).toBe(before);
  });

  it('a spent quota is an ephemeral message saying what it costs and what is left, and charges nothing', async () => {
    services.budget = 1;
    const i = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x' });
    const reply = await createdFor(i);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(reply.content).toMatch(/^⚠️ This job costs 5 units and you have 1 of 1 left today/);
    expect(services.charged.get(`${GUILD}:${BOB}`) ?? 0).toBe(0);
  });

  it('a blocked word is refused ephemerally', async () => {
    await services.updateGuildSettings(GUILD, { addBlockedWords: ['gore'] });
    try {
      const i = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'lots of gore' });
      const reply = await createdFor(i);
      expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
      expect(reply.content).toContain('Your prompt contains “gore”');
    } finally {
      await services.updateGuildSettings(GUILD, { removeBlockedWords: ['gore'] });
    }
  });

  it('@everyone, roles and user ids in a prompt ping nobody: every message sets allowed_mentions', async () => {
    const prompt = '@everyone @here <@&200000000000000006> <@200000000000000004> ``` **x**';
    const { i, job } = await imagine(ALICE, { prompt });
    const done = await finished(i, job);
    expect(done.content.match(/```/g)).toHaveLength(2);
    const sent = standIn.requests({ token: i.token }).filter((r) => r.method !== 'GET');
    expect(sent.length).toBeGreaterThanOrEqual(2);
    for (const r of sent) {
      const body = r.body as { data?: { allowed_mentions?: unknown }; allowed_mentions?: unknown };
      expect(body.data?.allowed_mentions ?? body.allowed_mentions).toEqual({ parse: [] });
    }
  });

  it('takes the guide’s infotext from parameters, pasted as one line', async () => {
    const guide =
      'masterpiece, best quality, 1girl, eye focus, katsuragi misato, ribbed sweater, purple hair, brown eyes Negative prompt: lowres, (bad anatomy), text, cropped, worst quality, low quality, jpeg artifacts, signature, watermark, username, artist name, (out of frame), black and white, obese, censored, child, loli, long fingernails Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1506386276, Size: 512x512, Model hash: 63c46c36, ENSD: 31337';
    const { i, job } = await imagine(ALICE, {
      prompt:
        'masterpiece, best quality, 1girl, eye focus, katsuragi misato, ribbed sweater, purple hair, brown eyes',
      parameters: guide,
    });
    expect(job.input.request).toMatchObject({
      negative:
        'lowres, (bad anatomy), text, cropped, worst quality, low quality, jpeg artifacts, signature, watermark, username, artist name, (out of frame), black and white, obese, censored, child, loli, long fingernails',
      steps: 30,
      sampler: 'DPM++ 2M',
      scheduler: 'Karras',
      cfg: 7,
      seed: 1506386276,
      width: 512,
      height: 512,
      ensd: 31337,
    });
    expect(standIn.original(i)?.content).toContain('made with model hash 63c46c36');
    await finished(i, job);
  });

  it('holds the interaction with a deferred reply when the queue is slow to answer', async () => {
    services.submitDelayMs = 2_500;
    const { i, job } = await imagine(ALICE);
    expect(standIn.interaction(i).ack?.type).toBe(5);
    await finished(i, job);
  });

  it('defers when the time already spent on the interaction leaves too little for the submission', async () => {
    // 0.8 s of submission alone fits the 2 s; after 1.5 s spent before it (a slow settings read,
    // a slow gateway) it does not
    services.submitDelayMs = 800;
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'late' }, { sentMsAgo: 1_500 });
    const job = await services.nextJob();
    await replyWhen(i, (m) => m.content.includes('Queued'));
    expect(standIn.interaction(i).ack?.type).toBe(5);
    await finished(i, job);
  });

  it('a slow refusal replaces the deferred reply with an ephemeral message', async () => {
    services.submitDelayMs = 2_500;
    services.budget = 0;
    const i = standIn.slash(GUILD, BOB, 'imagine', { prompt: 'x' });
    const followup = await standIn.waitForRequest(
      (r) => r.route === 'POST /webhooks/:app/:token' && r.token === i.token,
      15_000,
    );
    expect((followup.body as { flags?: number }).flags).toBe(EPHEMERAL);
    expect(standIn.original(i)?.deleted).toBe(true);
  });
});

describe('the buttons under a result', () => {
  let result: { i: Injected; job: ScriptedJob; message: StoredMessage };

  beforeAll(async () => {
    const { i, job } = await imagine(ALICE, { seed: 7 });
    result = { i, job, message: await finished(i, job) };
  });

  it('🎲 Reroll: a new reply with the same settings and a new seed, charged to whoever pressed it', async () => {
    const click = standIn.click(result.message, `hb:reroll:${result.job.jobId}`, BOB);
    const job = await services.nextJob();
    expect(job.input.requester.userId).toBe(BOB);
    expect(job.input.request).toMatchObject({ ...result.job.input.request, seed: expect.any(Number) });
    expect(job.input.request.seed).not.toBe(7);
    expect(services.charged.get(`${GUILD}:${BOB}`)).toBe(5);
    expect(services.charged.get(`${GUILD}:${ALICE}`) ?? 0).toBe(0);
    const reply = await replyWhen(click, (m) => m.content.includes('Queued'));
    expect(reply.id).not.toBe(result.message.id);
    job.cancel();
  });

  it('🔁 Re-upscale: an upscale job from this job’s base at the chosen denoise, with the soft note', async () => {
    const pick = standIn.select(result.message, `hb:upscale:${result.job.jobId}`, ['0.4'], BOB);
    const job = await services.nextJob();
    expect(job.input).toMatchObject({ kind: 'upscale', parentJobId: result.job.jobId, denoises: [0.4] });
    expect(job.input.request.denoise).toBe(0.4);
    expect(job.input.request.seed).toBe(7);
    const reply = await replyWhen(pick, (m) => m.content.includes('Queued'));
    expect(reply.content).toContain('latent upscales tend to come out soft');
    const done = await finished(pick, job);
    expect(await dimensions(done)).toEqual(['7-hires.png png 1024x1024']);
  });

  it('ℹ️ Parameters: the infotexts, ephemeral, ready to copy', async () => {
    const click = standIn.click(result.message, `hb:params:${result.job.jobId}`, BOB);
    const reply = await createdFor(click);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(reply.content).toContain(
      'Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 7, Size: 512x512',
    );
    expect(reply.content).toContain('Denoising strength: 0.6');
  });

  it('🗑 Delete: refused for someone else, done for the owner', async () => {
    const refused = standIn.click(result.message, `hb:delete:${result.job.jobId}`, BOB);
    const reply = await createdFor(refused);
    expect(reply.content).toBe('⚠️ Only its owner or an admin can delete this image.');
    expect(standIn.message(result.message.id)?.deleted).toBe(false);
    standIn.click(result.message, `hb:delete:${result.job.jobId}`, ALICE);
    await standIn.waitUntil(() => (standIn.message(result.message.id)?.deleted ? true : undefined));
  });

  it('🗑 Delete with the presser’s own job id forged onto someone else’s message is refused there', async () => {
    const alice = await imagine(ALICE, { seed: 1 });
    const aliceDone = await finished(alice.i, alice.job);
    const bob = await imagine(BOB, { seed: 2 });
    const bobDone = await finished(bob.i, bob.job);
    const running = await imagine(ALICE, { seed: 3 });
    const aliceQueued = standIn.original(running.i) as StoredMessage;
    // Bob owns the job the id names, but neither message shows that job
    for (const target of [aliceDone, aliceQueued]) {
      const forged = standIn.click(target, `hb:delete:${bob.job.jobId}`, BOB);
      expect((await createdFor(forged)).content).toBe('⚠️ This button is out of date.');
      expect(standIn.message(target.id)?.deleted).toBe(false);
    }
    // nor may an admin delete a message through another job's button
    const byAdmin = standIn.click(aliceDone, `hb:delete:${bob.job.jobId}`, ADMIN);
    expect((await createdFor(byAdmin)).content).toBe('⚠️ This button is out of date.');
    expect(standIn.message(aliceDone.id)?.deleted).toBe(false);
    // the running job was left alone: it still finishes on its own reply
    const runningDone = await finished(running.i, running.job);
    expect(runningDone.id).toBe(aliceQueued.id);
    expect(runningDone.attachments.length).toBeGreaterThan(0);
    // Bob's own button on his own message still works
    standIn.click(bobDone, `hb:delete:${bob.job.jobId}`, BOB);
    await standIn.waitUntil(() => (standIn.message(bobDone.id)?.deleted ? true : undefined));
  });
});

describe('✖ Cancel', () => {
  it('stops a queued job for its owner; the reply says so and nothing is charged', async () => {
    const { i, job } = await imagine(ALICE);
    const queued = standIn.original(i) as StoredMessage;
    expect(buttons(queued)).toEqual([`hb:cancel:${job.jobId}`]);
    const refused = standIn.click(queued, `hb:cancel:${job.jobId}`, BOB);
    expect((await createdFor(refused)).content).toBe('⚠️ Only its owner or an admin can cancel this job.');
    standIn.click(queued, `hb:cancel:${job.jobId}`, ALICE);
    await replyWhen(i, (m) => m.content.includes('**Cancelled**'));
    expect(services.cancels.at(-1)).toEqual({ jobId: job.jobId, by: { userId: ALICE, isAdmin: false } });
    expect(services.charged.get(`${GUILD}:${ALICE}`)).toBe(0);
  });

  it('an admin may cancel anyone’s job', async () => {
    const { i, job } = await imagine(ALICE);
    standIn.click(standIn.original(i) as StoredMessage, `hb:cancel:${job.jobId}`, ADMIN);
    await replyWhen(i, (m) => m.content.includes('**Cancelled**'));
    expect(services.cancels.at(-1)?.by).toEqual({ userId: ADMIN, isAdmin: true });
  });
});

describe('/compare', () => {
  it('one base and one hires pass per value: the sheet plus each image', async () => {
    const i = standIn.slash(GUILD, ALICE, 'compare', { prompt: 'a cat', denoise: '0.3,0.5,0.7', seed: 9 });
    const job = await services.nextJob();
    expect(job.input).toMatchObject({ kind: 'imagine', denoises: [0.3, 0.5, 0.7] });
    const done = await finished(i, job);
    expect(await dimensions(done)).toEqual([
      '9-compare.png png 3072x1064',
      '9-denoise-0.3.png png 1024x1024',
      '9-denoise-0.5.png png 1024x1024',
      '9-denoise-0.7.png png 1024x1024',
    ]);
  });

  it('refuses a list of one value', async () => {
    const i = standIn.slash(GUILD, ALICE, 'compare', { prompt: 'a cat', denoise: '0.5' });
    expect((await createdFor(i)).content).toBe(
      '⚠️ denoise must list 2 to 4 different values, e.g. 0.3,0.5,0.7 (got "0.5")',
    );
  });
});

describe('/paste', () => {
  it('opens a form, and the multi-line infotext pasted there becomes the job', async () => {
    const i = standIn.slash(GUILD, ALICE, 'paste');
    const shown = await standIn.waitForAck(i);
    expect(shown.ack?.type).toBe(9);
    expect(shown.modal).toMatchObject({ custom_id: 'hb:paste' });
    const submit = standIn.submitModal(GUILD, ALICE, 'hb:paste', {
      parameters:
        'a red fox\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 6, Seed: 5, Size: 512x768',
    });
    const job = await services.nextJob();
    expect(job.input.request).toMatchObject({
      prompt: 'a red fox',
      negative: 'blurry',
      steps: 20,
      sampler: 'Euler a',
      cfg: 6,
      seed: 5,
      width: 512,
      height: 768,
    });
    await finished(submit, job);
  });
});

describe('/quota and /queue', () => {
  it('/quota says what is left, what a default job costs and when it resets', async () => {
    const i = standIn.slash(GUILD, BOB, 'quota');
    const reply = await createdFor(i);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(reply.content).toContain('You have **50** of 50 units left today');
    expect(reply.content).toContain('A default job costs 5 units: 10 more jobs today.');
  });

  it('/queue lists the member’s jobs with positions', async () => {
    const { i: first, job } = await imagine(BOB, { prompt: 'a waiting job' });
    const i = standIn.slash(GUILD, BOB, 'queue');
    const reply = await createdFor(i);
    expect(reply.content).toContain(`\`${job.jobId}\` image · position 1 · a waiting job`);
    job.cancel();
    await replyWhen(first, (m) => m.content.includes('Cancelled'));
  });
});

describe('admin commands', () => {
  it('refuse a member without Manage Server whose client let the command through', async () => {
    const i = standIn.slash(GUILD, BOB, 'settings show');
    const reply = await createdFor(i);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(reply.content).toBe('⚠️ You need the Manage Server permission to use /settings.');
    const j = standIn.slash(GUILD, BOB, 'quota-admin block', { user: ALICE });
    expect((await createdFor(j)).content).toBe(
      '⚠️ You need the Manage Server permission to use /quota-admin.',
    );
    expect(services.quotaCalls.filter((c) => c[0] === 'setBlocked')).toEqual([]);
  });

  it('trust the permissions Discord sends, not the roles: a crafted admin role without the bit is refused', async () => {
    const i = standIn.slash(GUILD, ADMIN, 'settings show', {}, { permissions: 0n });
    expect((await createdFor(i)).content).toBe('⚠️ You need the Manage Server permission to use /settings.');
  });

  it('/settings shows and changes the server’s defaults for an admin', async () => {
    const show = standIn.slash(GUILD, ADMIN, 'settings show');
    expect((await createdFor(show)).content).toContain(
      'Defaults: 512×512 → 1024×1024 (hires ×2, Latent), 30 steps, DPM++ 2M Karras, CFG 7, denoise 0.6',
    );
    const set = standIn.slash(GUILD, ADMIN, 'settings defaults', { steps: 20, sampler: 'Euler a' });
    expect((await createdFor(set)).content).toContain('20 steps, Euler a');
    const bad = standIn.slash(GUILD, ADMIN, 'settings defaults', { steps: 80 });
    expect((await createdFor(bad)).content).toBe('⚠️ steps must be a whole number from 1 to 50 (got 80)');
    const reset = standIn.slash(GUILD, ADMIN, 'settings reset', { what: 'defaults' });
    expect((await createdFor(reset)).content).toContain('30 steps, DPM++ 2M Karras');
  });

  it('/quota-admin sets budgets, resets and blocks', async () => {
    const calls = [
      standIn.slash(GUILD, ADMIN, 'quota-admin set-user', { user: ALICE, units: 10 }),
      standIn.slash(GUILD, ADMIN, 'quota-admin set-role', { role: '200000000000000007' }),
      standIn.slash(GUILD, ADMIN, 'quota-admin reset', { user: ALICE }),
      standIn.slash(GUILD, ADMIN, 'quota-admin block', { user: BOB }),
    ];
    const replies = await Promise.all(calls.map(createdFor));
    expect(replies.map((r) => r.content)).toEqual([
      `✅ <@${ALICE}> now gets 10 units a day.`,
      '✅ <@&200000000000000007> no longer has its own budget.',
      `✅ <@${ALICE}> has today’s budget back.`,
      `✅ <@${BOB}> can no longer generate images here.`,
    ]);
    expect(services.quotaCalls.filter((c) => c[0] !== 'guildDailyUnits')).toEqual(
      expect.arrayContaining([
        ['setDailyUnits', GUILD, { scope: 'user', userId: ALICE }, 10, ADMIN],
        ['setDailyUnits', GUILD, { scope: 'role', roleId: '200000000000000007' }, null, ADMIN],
        ['resetUser', GUILD, ALICE, ADMIN],
        ['setBlocked', GUILD, BOB, true, ADMIN],
      ]),
    );
  });

  it('/quota-admin set-role refuses @everyone (it holds no member) and points to set-guild', async () => {
    const before = services.quotaCalls.length;
    const i = standIn.slash(GUILD, ADMIN, 'quota-admin set-role', { role: GUILD, units: 500 });
    const reply = await createdFor(i);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(reply.content).toBe(
      '⚠️ role cannot be @everyone: use /quota-admin set-guild to set the budget every member gets.',
    );
    expect(services.quotaCalls.slice(before).filter((c) => c[0] === 'setDailyUnits')).toEqual([]);
  });
});

describe('errors', () => {
  it('an out-of-date button gets a short ephemeral answer', async () => {
    const { i, job } = await imagine(ALICE);
    const message = await finished(i, job);
    const click = standIn.click(message, 'hb:reroll:NOT-A-JOB', ALICE);
    expect((await createdFor(click)).content).toBe('⚠️ This button is out of date.');
    const unknown = standIn.click(message, 'hb:reroll:zzzzzzzz', ALICE);
    expect((await createdFor(unknown)).content).toBe('⚠️ That image is no longer available.');
  });

  it('a button or menu whose id lacks the bot’s prefix is answered as out of date, ephemerally', async () => {
    const { i, job } = await imagine(ALICE);
    const message = await finished(i, job);
    for (const click of [
      standIn.click(message, 'garbage', BOB),
      standIn.click(message, '', BOB),
      standIn.select(message, `other:upscale:${job.jobId}`, ['0.5'], BOB),
    ]) {
      const reply = await createdFor(click);
      expect(reply.content).toBe('⚠️ This button is out of date.');
      expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    }
  });

  it('anything else is logged with the job id, and the member sees only that id', async () => {
    const { i, job } = await imagine(ALICE);
    const message = await finished(i, job);
    services.brokenLookup = true;
    const click = standIn.click(message, `hb:reroll:${job.jobId}`, ALICE);
    const reply = await createdFor(click);
    expect(reply.content).toContain(`job \`${job.jobId}\``);
    expect(reply.content).not.toContain('database');
    const line = await eventually(() => {
      const found = logs.find((l) => l.msg === 'interaction failed' && l.jobId === job.jobId);
      if (!found) throw new Error('not logged yet');
      return found;
    });
    expect(JSON.stringify(line)).toContain('database connection lost');
    expect(JSON.stringify(logs)).not.toContain(click.token);
  });

  it('a reply deleted under a running job: the failed edits are logged with the job id, never the token', async () => {
    const { i, job } = await imagine(ALICE);
    (standIn.original(i) as StoredMessage).deleted = true;
    job.progress({ pass: 'base', step: 1, total: 30 });
    const warned = await eventually(() => {
      const line = logs.find((l) => l.msg === 'progress edit failed' && l.jobId === job.jobId);
      if (!line) throw new Error('not logged yet');
      return line;
    });
    expect(warned.err).toMatchObject({ code: 10008, status: 404, method: 'PATCH' });
    expect(String((warned.err as { url: string }).url)).toContain('/webhooks/');
    job.cancel();
    // the final state cannot go to the deleted reply either: it is posted in the channel
    const post = await standIn.waitForRequest(
      (r) =>
        r.route === 'POST /channels/:channel/messages' &&
        String((r.body as { content?: string }).content).includes(job.jobId),
      15_000,
    );
    expect((post.body as { content: string }).content).toContain('**Cancelled**');
    await eventually(() =>
      expect(logs.some((l) => l.msg === 'final edit failed; posting the result in the channel')).toBe(true),
    );
    expect(logs.some((l) => l.msg === 'interaction failed' && l.jobId === job.jobId)).toBe(false);
    expect(JSON.stringify(logs)).not.toContain(i.token);
  });

  it('a failed job says nothing was charged', async () => {
    const { i, job } = await imagine(ALICE);
    job.fail();
    const reply = await replyWhen(i, (m) => m.content.includes('**Failed**'));
    expect(reply.content).toContain(`something went wrong on our side (job \`${job.jobId}\``);
  });
});

describe('a job that outlives its interaction token', () => {
  it('is posted as a new channel message that names its owner and pings nobody else', async () => {
    const { i, job } = await imagine(ALICE, { prompt: '@everyone look', seed: 3 });
    standIn.advance(TOKEN_LIFETIME_MS + 1_000);
    try {
      await job.finish();
      const post = await standIn.waitForRequest(
        (r) =>
          r.route === 'POST /channels/:channel/messages' &&
          String((r.body as { content?: string }).content).includes('look'),
        15_000,
      );
      const body = post.body as {
        content: string;
        allowed_mentions: unknown;
        message_reference?: { message_id: string };
      };
      expect(body.content.startsWith(`<@${ALICE}> `)).toBe(true);
      expect(body.allowed_mentions).toEqual({ parse: [], users: [ALICE], replied_user: false });
      expect(body.message_reference?.message_id).toBe(standIn.original(i)?.id);
      const posted = standIn.message(post.messageId as string) as StoredMessage;
      expect(await dimensions(posted)).toEqual(['3-base.png png 512x512', '3-hires.png png 1024x1024']);
      await eventually(() => expect(services.recorded.get(job.jobId)).toEqual([posted.id]));
    } finally {
      standIn.advance(-(TOKEN_LIFETIME_MS + 1_000));
    }
  });
});
