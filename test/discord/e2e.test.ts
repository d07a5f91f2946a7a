// The product end to end, as members meet it: the real bot with the real services (job service,
// quota ledger and guild_settings in PGlite, the engine worker on a tiny ONNX model) against the
// Discord stand-in. The scripted-services tests (commands.test.ts) test the front end alone; these
// prove the wiring: what reaches Discord is what the engine drew, what the ledger charged.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobs } from '../../src/db/schema.ts';
import type { JobEvent } from '../../src/jobs/service.ts';
import { ADMIN, ALICE, BOB, CHANNEL, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type Injected, type StoredMessage } from '../support/discord-stand-in.ts';
import {
  botFolder,
  componentIds,
  hasContent,
  imagesOf,
  isFinished,
  jobIdOf,
  ledgerOf,
  mentionsOfEveryMessage,
  type RealBot,
  replyWhen,
  startRealBot,
} from '../support/real-bot.ts';

let standIn: DiscordStandIn;
let folder: ReturnType<typeof botFolder>;
let real: RealBot;
/** Every job event the job service emitted, as the front end's handles saw them. */
const events: JobEvent[] = [];

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD], heartbeatMs: 1_000 });
  // each UNet call does real work (two 1024² matmuls), so a long job lasts seconds
  folder = botFolder({ unetWork: 1024 });
  real = await startRealBot(standIn, { ...folder.env, DISCORD_GUILD_ID: GUILD });
  real.services.jobs.on((e) => events.push(e));
  // small, quick jobs by default, set as an admin would: the server's defaults in guild_settings
  const set = standIn.slash(GUILD, ADMIN, 'settings defaults', { size: '256x256', steps: 6 });
  const answer = await replyWhen(standIn, set, hasContent);
  expect(answer.content).toContain('256×256 → 512×512 (hires ×2, Latent), 6 steps, DPM++ 2M Karras');
}, 180_000);

afterAll(async () => {
  await real?.stop();
  await standIn?.stop();
  folder?.remove();
});

const db = () => real.services.database.db;
const done = (i: Injected) => replyWhen(standIn, i, isFinished, 'the final edit');
const requester = (userId: string) => ({
  guildId: GUILD,
  channelId: CHANNEL,
  userId,
  roleIds: [],
  isAdmin: false,
});

describe('/imagine through the real job service and engine', () => {
  let first: { i: Injected; message: StoredMessage; jobId: string };

  beforeAll(async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a lighthouse at dusk', seed: 42 });
    const message = await done(i);
    first = { i, message, jobId: jobIdOf(message) };
  });

  it('acknowledges in time, then edits to both PNGs with their parameters, the summary and the buttons', async () => {
    const { i, message, jobId } = first;
    // acknowledged inside Discord's 3 s (the stand-in refuses a late one) with a public reply
    expect([4, 5]).toContain(standIn.interaction(i).ack?.type);
    expect(message.flags & 64).toBe(0);
    const [base, hires] = await imagesOf(standIn, message);
    expect(base).toMatchObject({ filename: '42-base.png', format: 'png', width: 256, height: 256 });
    expect(hires).toMatchObject({ filename: '42-hires.png', format: 'png', width: 512, height: 512 });
    const model = real.services.frontEnd.model();
    expect(base?.parameters).toBe(
      `a lighthouse at dusk\nSteps: 6, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 256x256, Model hash: ${model.hash}, Model: tiny, RNG: NV, Version: hiresbot-0.1.0`,
    );
    expect(hires?.parameters).toBe(
      `a lighthouse at dusk\nSteps: 6, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 256x256, Model hash: ${model.hash}, Model: tiny, Denoising strength: 0.6, RNG: NV, Hires upscale: 2, Hires upscaler: Latent, Version: hiresbot-0.1.0`,
    );
    // cost = (256²·6 + 512²·6) / (512²·30) = 0.25 units, charged on the real ledger
    expect(message.content).toContain(
      'Seed 42 · DPM++ 2M Karras · 6 steps · denoise 0.6 · 256×256 → 512×512',
    );
    expect(message.content).toContain('Cost 0.25 units (49.75 left today)');
    expect(componentIds(message)).toEqual([
      `hb:reroll:${jobId}`,
      `hb:params:${jobId}`,
      `hb:delete:${jobId}`,
      `hb:upscale:${jobId}`,
    ]);
    const rows = await ledgerOf(db(), GUILD, ALICE);
    expect(rows.map((r) => [r.jobId, r.kind, r.units])).toEqual([
      [jobId, 'reserve', 0.25],
      [jobId, 'commit', 0],
    ]);
    const [row] = await db().select().from(jobs).where(eq(jobs.id, jobId));
    expect(row).toMatchObject({ status: 'done', kind: 'imagine', resultMessageIds: [message.id] });
    expect(row?.interactionToken).toBeNull();
  });

  it('🎲 Reroll: a new reply with a new seed, charged to whoever pressed it', async () => {
    const aliceBefore = await ledgerOf(db(), GUILD, ALICE);
    const click = standIn.click(first.message, `hb:reroll:${first.jobId}`, BOB);
    const rerolled = await done(click);
    expect(rerolled.id).not.toBe(first.message.id);
    expect(rerolled.content).toContain('**Done**');
    const seed = Number(/Seed (\d+)/.exec(rerolled.content)?.[1]);
    expect(seed).not.toBe(42);
    const images = await imagesOf(standIn, rerolled);
    expect(images.map((x) => x.filename)).toEqual([`${seed}-base.png`, `${seed}-hires.png`]);
    expect(images[1]?.parameters).toContain(`Seed: ${seed}, Size: 256x256`);
    const jobId = jobIdOf(rerolled);
    expect((await ledgerOf(db(), GUILD, BOB)).map((r) => [r.jobId, r.kind, r.units])).toEqual([
      [jobId, 'reserve', 0.25],
      [jobId, 'commit', 0],
    ]);
    expect(await ledgerOf(db(), GUILD, ALICE)).toEqual(aliceBefore);
    expect((await real.services.frontEnd.usage(requester(BOB))).used).toBe(0.25);
  });

  it('🔁 Re-upscale: a hires pass only, from the stored base latent, charged for that pass', async () => {
    const pick = standIn.select(first.message, `hb:upscale:${first.jobId}`, ['0.4'], ALICE);
    const message = await done(pick);
    expect(message.id).not.toBe(first.message.id);
    expect(message.content).toContain('🔁 **Re-upscaled**');
    expect(message.content).toContain('latent upscales tend to come out soft');
    const jobId = jobIdOf(message);
    const [row] = await db().select().from(jobs).where(eq(jobs.id, jobId));
    expect(row).toMatchObject({ kind: 'upscale', parentJobId: first.jobId, denoises: [0.4], status: 'done' });
    // the engine reported hires steps only: no second base pass
    const passes = new Set(
      events.flatMap((e) => (e.jobId === jobId && e.type === 'progress' ? [e.progress.pass] : [])),
    );
    expect(passes).toEqual(new Set(['hires']));
    const images = await imagesOf(standIn, message);
    expect(images).toMatchObject([{ filename: '42-hires.png', width: 512, height: 512 }]);
    expect(images[0]?.parameters).toContain('Seed: 42, Size: 256x256');
    expect(images[0]?.parameters).toContain('Denoising strength: 0.4');
    // the hires pass alone: 512²·6 / (512²·30) = 0.2 units
    const rows = await ledgerOf(db(), GUILD, ALICE);
    expect(rows.filter((r) => r.jobId === jobId).map((r) => [r.kind, r.units])).toEqual([
      ['reserve', 0.2],
      ['commit', 0],
    ]);
  });

  it('ℹ️ Parameters answers with the stored infotexts, only for the presser', async () => {
    const click = standIn.click(first.message, `hb:params:${first.jobId}`, BOB);
    const answer = await replyWhen(standIn, click, hasContent);
    expect(answer.flags & 64).toBe(64);
    expect(answer.content).toContain(
      'Steps: 6, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42',
    );
  });
});

describe('/compare', () => {
  it('one base and one hires pass per value: the labelled sheet plus each image, N+1 in all', async () => {
    const i = standIn.slash(GUILD, ALICE, 'compare', { prompt: 'a cat', denoise: '0.3,0.5,0.7', seed: 9 });
    const message = await done(i);
    expect(message.content).toContain('**Denoise comparison**');
    const images = await imagesOf(standIn, message);
    expect(images.map((x) => `${x.filename} ${x.width}x${x.height}`)).toEqual([
      expect.stringMatching(/^9-compare\.png \d+x\d+$/),
      '9-denoise-0.3.png 512x512',
      '9-denoise-0.5.png 512x512',
      '9-denoise-0.7.png 512x512',
    ]);
    for (const d of [0.3, 0.5, 0.7]) {
      expect(images.find((x) => x.filename === `9-denoise-${d}.png`)?.parameters).toContain(
        `Denoising strength: ${d},`,
      );
    }
    const jobId = jobIdOf(message);
    const passes = events.filter((e) => e.jobId === jobId && e.type === 'progress');
    expect(passes.filter((e) => e.type === 'progress' && e.progress.pass === 'base').length).toBeGreaterThan(
      0,
    );
    // one base (256²·6) and three hires passes (512²·6 each): 0.05 + 3 × 0.2
    const rows = await ledgerOf(db(), GUILD, ALICE);
    expect(rows.find((r) => r.jobId === jobId && r.kind === 'reserve')?.units).toBe(0.65);
  });
});

describe('the guide’s infotext in parameters', () => {
  it('gives exactly its settings, with a model-hash note rather than a refusal', async () => {
    const prompt =
      'masterpiece, best quality, 1girl, eye focus, katsuragi misato, ribbed sweater, purple hair, brown eyes';
    const negative =
      'lowres, (bad anatomy), text, cropped, worst quality, low quality, jpeg artifacts, signature, watermark, username, artist name, (out of frame), black and white, obese, censored, child, loli, long fingernails';
    // pasted into a slash option, its line breaks arrive as spaces
    const guide = `${prompt} Negative prompt: ${negative} Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1506386276, Size: 512x512, Model hash: 63c46c36, ENSD: 31337`;
    const i = standIn.slash(GUILD, BOB, 'imagine', { prompt, parameters: guide });
    // (the server's defaults, 256×256 and 6 steps, are under the pasted settings)
    const queued = await replyWhen(standIn, i, (m) => m.content.includes('job `'));
    expect(queued.content).toContain('made with model hash 63c46c36');
    const message = await done(i);
    expect(message.content).toContain(
      'Seed 1506386276 · DPM++ 2M Karras · 30 steps · denoise 0.6 · 512×512 → 1024×1024',
    );
    const model = real.services.frontEnd.model();
    const [base, hires] = await imagesOf(standIn, message);
    expect(base).toMatchObject({ width: 512, height: 512 });
    expect(hires).toMatchObject({ width: 1024, height: 1024 });
    expect(hires?.parameters).toBe(
      `${prompt}\nNegative prompt: ${negative}\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1506386276, Size: 512x512, Model hash: ${model.hash}, Model: tiny, Denoising strength: 0.6, RNG: NV, Hires upscale: 2, Hires upscaler: Latent, Version: hiresbot-0.1.0`,
    );
    // ENSD is kept with the job; like A1111, the infotext names it only for samplers that use it
    const [row] = await db()
      .select()
      .from(jobs)
      .where(eq(jobs.id, jobIdOf(message)));
    expect(row?.request).toMatchObject({ negative, steps: 30, cfg: 7, seed: 1506386276, ensd: 31337 });
  });
});

describe('progress edits', () => {
  it('at most one edit per 2 s to the reply, previews while drawing, and the final edit always', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a slow one', seed: 5, steps: 50 });
    const message = await done(i);
    expect(message.content).toContain('**Done**');
    const writes = standIn
      .requests({ token: i.token })
      .filter((r) => r.route === 'POST /interactions/:id/:token/callback' || r.method === 'PATCH');
    const gaps = writes.slice(1).map((w, k) => w.at - (writes[k] as { at: number }).at);
    // measured on the stand-in's arrival times, with a margin for the trip there
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(2_000 - 150);
    const edits = standIn.message(message.id)?.edits ?? [];
    const drawing = edits.filter((e) => String(e.body.content).includes('**Drawing**'));
    // 100 UNet calls of real work take several seconds: the member saw progress
    expect(drawing.length).toBeGreaterThan(0);
    expect(drawing.some((e) => e.files.includes('preview.png'))).toBe(true);
    expect(String(edits.at(-1)?.body.content)).toContain('**Done**');
    expect(edits.at(-1)?.files).toEqual(['5-base.png', '5-hires.png']);
    console.info(
      `progress: ${edits.length} edits in ${gaps.reduce((a, b) => a + b, 0)} ms, gaps ${gaps.join(', ')} ms`,
    );
  });
});

describe('allowed_mentions', () => {
  it('every reply and edit the bot sent in this file pinged nobody', () => {
    const sent = mentionsOfEveryMessage(standIn);
    expect(sent.length).toBeGreaterThan(10);
    for (const m of sent) expect(m, m.route).toEqual({ route: m.route, parse: [], roles: [], users: [] });
  });
});
