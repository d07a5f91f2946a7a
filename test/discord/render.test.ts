// Reply rendering: pure functions from job data to Discord payloads.

import { ComponentType } from 'discord.js';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { JobRow } from '../../src/db/schema.ts';
import { renderInternalError, renderUserError, userErrorText } from '../../src/discord/render/errors.ts';
import { renderQueue, renderQuota, renderSettings } from '../../src/discord/render/info.ts';
import { noteText } from '../../src/discord/render/notes.ts';
import type { ReplyPayload } from '../../src/discord/render/payload.ts';
import {
  type DoneEvent,
  type FailedEvent,
  forChannel,
  type ResultView,
  renderCancelled,
  renderFailed,
  renderParameters,
  renderResult,
} from '../../src/discord/render/result.ts';
import {
  initialProgress,
  type JobView,
  progressBar,
  reduceProgress,
  renderHandedBack,
  renderStatus,
} from '../../src/discord/render/status.ts';
import { codeBlock, truncate, units } from '../../src/discord/render/text.ts';
import { fitUploads } from '../../src/discord/render/uploads.ts';
import type { JobEvent, Usage } from '../../src/discord/services.ts';
import { BUILT_IN_DEFAULTS, effectiveSettings } from '../../src/discord/settings.ts';
import type { FailureReason } from '../../src/jobs/types.ts';
import { UserError } from '../../src/user-error.ts';

const usage: Usage = {
  used: 10,
  budget: 50,
  remaining: 40,
  blocked: false,
  resetsAt: new Date('2030-01-02T00:00:00Z'),
};
const view: JobView = {
  jobId: 'm3x9k2a1b2c3',
  kind: 'imagine',
  request: { ...BUILT_IN_DEFAULTS, prompt: 'a lighthouse at dusk', seed: 1506386276 },
  denoises: [0.6],
  cost: 4,
  usage,
  notes: [],
};
const png = (tag: string) => Buffer.from(`png:${tag}`);
const image = (w: number, h: number, tag: string) => ({
  png: png(tag),
  width: w,
  height: h,
  infotext: `info ${tag}`,
});
const done: DoneEvent = {
  type: 'done',
  jobId: view.jobId,
  images: { base: image(512, 512, 'base'), upscaled: [{ ...image(1024, 1024, 'hires'), denoise: 0.6 }] },
  job: {} as JobRow,
  usage,
  timings: { queuedMs: 0, hiresMs: [], decodeMs: 0, totalMs: 41_230 },
};
const failedWith = (reason: FailureReason, message = 'boom'): FailedEvent => ({
  type: 'failed',
  jobId: view.jobId,
  job: {} as JobRow,
  reason,
  message,
  refunded: true,
});
const resultView: ResultView = { ...view, upscaleCost: 3 };

function customIds(p: ReplyPayload): string[] {
  return p.components.flatMap((row) => row.components.map((c) => ('custom_id' in c ? c.custom_id : '')));
}

describe('status while waiting and running', () => {
  it('queued: position, the prompt as text, cost and what is left, a Cancel button', () => {
    const p = renderStatus(view, initialProgress(3));
    expect(p.content.split('\n')).toEqual([
      '⏳ **Queued** · position 3 · job `m3x9k2a1b2c3`',
      '```',
      'a lighthouse at dusk',
      '```',
      'Cost 4 units · 40 of 50 left today',
    ]);
    expect(p.files).toEqual([]);
    expect(customIds(p)).toEqual(['hb:cancel:m3x9k2a1b2c3']);
    expect(p.ephemeral).toBe(false);
  });

  it('queued with no GPU worker online (a gateway): a note under the head, gone once it runs', () => {
    const p = renderStatus(view, initialProgress(1, true));
    expect(p.content.split('\n').slice(0, 2)).toEqual([
      '⏳ **Queued** · position 1 · job `m3x9k2a1b2c3`',
      '⚠️ No GPU worker is online right now; your job will start when one comes back.',
    ]);
    const running = reduceProgress(initialProgress(1, true), {
      type: 'started',
      jobId: view.jobId,
      attempt: 1,
    });
    expect(renderStatus(view, running).content).not.toContain('GPU worker');
  });

  it('queued again (its worker stopped): the note, the prompt and cost, no preview, a Cancel button', () => {
    const p = renderHandedBack({ ...view, usage: undefined });
    expect(p.content.split('\n')).toEqual([
      '⏳ **Queued again** · job `m3x9k2a1b2c3`',
      'Its GPU worker stopped; it starts again when a worker takes it.',
      '```',
      'a lighthouse at dusk',
      '```',
      'Cost 4 units',
    ]);
    // an edit with no files: the last preview goes with the progress bars
    expect(p.files).toEqual([]);
    expect(customIds(p)).toEqual(['hb:cancel:m3x9k2a1b2c3']);
  });

  it('running: one bar per pass and the latest preview', () => {
    const events: JobEvent[] = [
      { type: 'started', jobId: view.jobId, attempt: 1 },
      {
        type: 'progress',
        jobId: view.jobId,
        progress: { pass: 'base', step: 30, total: 30, preview: png('p1') },
      },
      { type: 'progress', jobId: view.jobId, progress: { pass: 'hires', step: 9, total: 18 } },
    ];
    const state = events.reduce(reduceProgress, initialProgress(1));
    const p = renderStatus(view, state);
    expect(p.content).toContain('🖌️ **Drawing** · job `m3x9k2a1b2c3`');
    expect(p.content).toContain(`Base 512×512 ${progressBar(30, 30)}`);
    expect(p.content).toContain(`Hires 1024×1024 (denoise 0.6) ${progressBar(9, 18)}`);
    expect(p.files).toEqual([{ name: 'preview.png', data: png('p1') }]);
  });

  it('counts the hires passes of a comparison as each restarts from step 1', () => {
    const compare = { ...view, denoises: [0.3, 0.5, 0.7] };
    const progress = (step: number): JobEvent => ({
      type: 'progress',
      jobId: view.jobId,
      progress: { pass: 'hires', step, total: 10 },
    });
    const state = [progress(1), progress(10), progress(1), progress(4)].reduce(
      reduceProgress,
      initialProgress(1),
    );
    expect(state.hires).toEqual([
      { step: 10, total: 10 },
      { step: 4, total: 10 },
    ]);
    const p = renderStatus(compare, state);
    expect(p.content).toContain('(denoise 0.7) waiting');
  });

  it.each<[number, number, string]>([
    [0, 30, '▱▱▱▱▱▱▱▱▱▱▱▱ 0/30'],
    [15, 30, '▰▰▰▰▰▰▱▱▱▱▱▱ 15/30'],
    [30, 30, '▰▰▰▰▰▰▰▰▰▰▰▰ 30/30'],
  ])('progressBar(%i, %i)', (step, total, bar) => {
    expect(progressBar(step, total)).toBe(bar);
  });
});

describe('the final reply', () => {
  it('two PNGs, the summary, and the buttons and menu carrying the job id', () => {
    const p = renderResult(resultView, done);
    expect(p.files).toEqual([
      { name: '1506386276-base.png', data: png('base') },
      { name: '1506386276-hires.png', data: png('hires') },
    ]);
    expect(p.content).toContain(
      'Seed 1506386276 · DPM++ 2M Karras · 30 steps · denoise 0.6 · 512×512 → 1024×1024',
    );
    expect(p.content).toContain('Cost 4 units (40 left today) · 41.2 s');
    expect(customIds(p)).toEqual([
      'hb:reroll:m3x9k2a1b2c3',
      'hb:params:m3x9k2a1b2c3',
      'hb:delete:m3x9k2a1b2c3',
      'hb:upscale:m3x9k2a1b2c3',
    ]);
    const menu = p.components[1]?.components[0];
    expect(menu?.type).toBe(ComponentType.StringSelect);
    const values = menu && 'options' in menu ? menu.options.map((o) => o.value) : [];
    expect(values).not.toContain('0.6');
    expect(values).toContain('0.3');
  });

  it('a comparison: the sheet and each upscaled image', () => {
    const compare: ResultView = { ...resultView, denoises: [0.3, 0.5], sheet: png('sheet') };
    const p = renderResult(compare, {
      ...done,
      images: {
        base: image(512, 512, 'base'),
        upscaled: [
          { ...image(1024, 1024, 'a'), denoise: 0.3 },
          { ...image(1024, 1024, 'b'), denoise: 0.5 },
        ],
      },
    });
    expect(p.files.map((f) => f.name)).toEqual([
      '1506386276-compare.png',
      '1506386276-denoise-0.3.png',
      '1506386276-denoise-0.5.png',
    ]);
    expect(p.content).toContain('denoise 0.3 / 0.5');
  });

  it('failure and cancellation say nothing was charged', () => {
    const failed = renderFailed(view, failedWith('error'));
    expect(failed.content).toContain('something went wrong on our side (job `m3x9k2a1b2c3`');
    expect(failed.content).not.toContain('boom');
    expect(failed.content).toContain('Nothing was charged.');
    const timeout = renderFailed(view, failedWith('timeout'));
    expect(timeout.content).toContain('it took longer than this bot allows');
    expect(renderFailed(view, failedWith('engine-crashed')).content).toContain('the image engine crashed');
    expect(renderFailed(view, failedWith('restart-expired')).content).toContain('the bot restarted');
    // what the engine alone can check (the prompt's chunks) is the member's to change: said as is
    const refused = renderFailed(
      view,
      failedWith(
        'bad-option',
        'prompt must fit in 10 chunks of 75 tokens, each BREAK starting a new one (got 11 chunks)',
      ),
    );
    expect(refused.content).toContain(
      'The job stopped: prompt must fit in 10 chunks of 75 tokens, each BREAK starting a new one (got 11 chunks). Nothing was charged.',
    );
    expect(renderCancelled(view).content).toContain('✖️ **Cancelled**');
  });

  it('after the token expired: a channel message that may mention its owner and nobody else', () => {
    const p = forChannel(renderResult(resultView, done), '100000000000000003');
    expect(p.content.startsWith('<@100000000000000003> ')).toBe(true);
    expect(p.allowedMentions).toEqual({ parse: [], users: ['100000000000000003'] });
  });

  it('parameters are an ephemeral code block to copy', () => {
    const p = renderParameters([{ label: 'Upscaled', infotext: 'a cat\nSteps: 20' }]);
    expect(p.ephemeral).toBe(true);
    expect(p.content).toBe('Upscaled\n```\na cat\nSteps: 20\n```');
  });
});

describe('text members typed cannot break the message or ping anyone', () => {
  const nasty = 'a cat ``` **bold** @everyone <@&123> <@456> `tick` ```js\nend';

  it('a prompt stays inside its code block whatever it contains', () => {
    const p = renderStatus({ ...view, request: { ...view.request, prompt: nasty } }, initialProgress(1));
    expect(p.content.match(/```/g)).toHaveLength(2);
    expect(codeBlock('a``b').match(/``/g)).toHaveLength(2);
  });

  it('every payload sets allowed_mentions parse: []', () => {
    const nastyView = { ...view, request: { ...view.request, prompt: nasty } };
    const all: ReplyPayload[] = [
      renderStatus(nastyView, initialProgress(1)),
      renderHandedBack(nastyView),
      renderResult({ ...nastyView, upscaleCost: 1 }, done),
      renderCancelled(nastyView),
      renderFailed(nastyView, failedWith('error')),
      renderUserError(new UserError('bad-option', nasty, { option: 'prompt' })),
      renderInternalError('abcd'),
      renderParameters([{ label: 'x', infotext: nasty }]),
      renderQuota(usage, 4),
      renderQueue({
        mine: [{ jobId: 'abcd', kind: 'imagine', status: 'queued', position: 1, prompt: nasty }],
        length: 1,
        max: 20,
      }),
      renderSettings(effectiveSettings(loadConfig({})), { dailyUnits: 50, setHere: false }),
    ];
    for (const p of all) expect(p.allowedMentions).toEqual({ parse: [] });
  });

  it('long prompts are shortened and content stays within 2000 characters', () => {
    const p = renderResult(
      { ...resultView, request: { ...view.request, prompt: 'word '.repeat(2000) } },
      done,
    );
    expect(p.content.length).toBeLessThanOrEqual(2000);
    expect(p.content).toContain('…');
  });

  it('a long prompt is cut between whole characters: never half an emoji', () => {
    // each case: text, budget in UTF-16 units, what is kept (the "…" takes one unit)
    const family = '👨\u200d👩\u200d👧'; // one grapheme of 8 units
    const cases: [string, number, string][] = [
      ['😀'.repeat(500), 350, '😀'.repeat(174)], // 2 units each: 174 × 2 = 348 ≤ 349
      ['a😀'.repeat(10), 8, 'a😀a😀a'], // 7 units; the next emoji would end at 9
      [family.repeat(5), 20, family.repeat(2)], // 16 units; a third family would end at 24
      ['🇫🇷'.repeat(10), 10, '🇫🇷'.repeat(2)], // a flag is two regional letters, 4 units
      ['e\u0301'.repeat(10), 6, 'e\u0301'.repeat(2)], // e + combining acute stay together
      ['short', 5, 'short'],
    ];
    for (const [text, max, kept] of cases) {
      const out = truncate(text, max);
      expect(out).toBe(kept === text ? text : `${kept}…`);
      expect(out.length).toBeLessThanOrEqual(max);
    }
    // as shown: the status reply's prompt and a /queue line
    const status = renderStatus(
      { ...view, request: { ...view.request, prompt: '😀'.repeat(500) } },
      initialProgress(1),
    );
    expect(status.content).toContain(`\n${'😀'.repeat(174)}…\n`);
    const queue = renderQueue({
      mine: [{ jobId: 'abcd', kind: 'imagine', status: 'queued', position: 1, prompt: '😀'.repeat(500) }],
      length: 1,
      max: 20,
    });
    expect(queue.content).toContain(`· ${'😀'.repeat(29)}…\n`); // 60 units: 29 × 2 = 58 ≤ 59
    for (const content of [status.content, queue.content]) expect(content).not.toMatch(/\p{Cs}/u);
  });
});

describe('user errors, from code and context', () => {
  it.each<[UserError, string]>([
    [
      new UserError('quota-exhausted', 'raw', {
        cost: 4,
        remaining: 1.5,
        budget: 50,
        resetsAt: new Date(1893542400000),
      }),
      'This job costs 4 units and you have 1.5 of 50 left today (your quota resets <t:1893542400:R>). Fewer steps, a smaller size or a lower hires scale cost less; see /quota.',
    ],
    [
      new UserError('queue-full', 'raw', { waiting: 20, max: 20 }),
      'The queue is full (20 jobs waiting or running). Try again in a few minutes.',
    ],
    [
      new UserError('user-limit', 'raw', { limit: 2 }),
      'You already have 2 jobs queued or running; wait for one to finish or cancel it (see /queue).',
    ],
    [
      // a context from an older or other sender without the field: the service's own sentence
      new UserError('user-limit', 'as the service says', {} as { limit: number }),
      'as the service says',
    ],
    [
      new UserError('blocked', 'raw', {}),
      'You are blocked from generating images in this server. Ask a server admin if you think this is a mistake.',
    ],
    [
      new UserError('bad-option', 'steps must be a whole number from 1 to 50 (got 51)', { option: 'steps' }),
      'steps must be a whole number from 1 to 50 (got 51)',
    ],
    [
      new UserError('not-allowed', 'Only its owner or an admin can cancel this job.', {
        action: 'cancel',
        reason: 'not-owner',
      }),
      'Only its owner or an admin can cancel this job.',
    ],
  ])('%s', (err, text) => {
    expect(userErrorText(err)).toBe(text);
    const p = renderUserError(err);
    expect(p.ephemeral).toBe(true);
    expect(p.content).toBe(`⚠️ ${text}`);
  });

  it('anything else names the job id and nothing of the error', () => {
    expect(renderInternalError('abcd').content).toContain('job `abcd`');
    expect(renderInternalError(undefined).ephemeral).toBe(true);
  });

  it('says nothing was charged only when that is so', () => {
    expect(renderInternalError('abcd').content).toBe(
      "❌ Something went wrong on our side with job `abcd`. Nothing was charged; a server admin can look it up in the bot's log.",
    );
    expect(renderInternalError('abcd', false).content).toBe(
      "❌ Something went wrong on our side with job `abcd`. Its units may have been charged; a server admin can look it up in the bot's log.",
    );
  });
});

describe('notes', () => {
  it.each([
    [
      { kind: 'soft-denoise' as const, denoise: 0.3 },
      'ℹ️ Below denoise 0.5, latent upscales tend to come out soft (this one: 0.3).',
    ],
    [
      {
        kind: 'other-model' as const,
        pastedHash: '63c46c36',
        pastedName: undefined,
        loaded: { name: 'sd_15', hash: '6ce0161689' },
      },
      'ℹ️ The pasted parameters were made with model hash 63c46c36; this bot runs sd\\_15 (6ce0161689), so expect a different picture.',
    ],
    [
      { kind: 'ignored-parameters' as const, keys: ['Face restoration'] },
      'ℹ️ Not reproduced from the pasted parameters: Face restoration.',
    ],
  ])('%o', (note, text) => {
    expect(noteText(note)).toBe(text);
  });
});

describe('info replies', () => {
  it('/quota: what is left, what a default job costs, when it resets', () => {
    expect(renderQuota(usage, 4).content).toBe(
      'You have **40** of 50 units left today (10 used).\nA default job costs 4 units: 10 more jobs today.\nYour quota resets <t:1893542400:R>.',
    );
    expect(renderQuota({ ...usage, budget: Number.POSITIVE_INFINITY }, 4).content).toContain('unlimited');
  });

  it('/queue: the member’s jobs with their positions and the queue’s length', () => {
    const p = renderQueue({
      mine: [
        { jobId: 'abcd', kind: 'imagine', status: 'running', position: 0, prompt: 'a cat' },
        { jobId: 'efgh', kind: 'upscale', status: 'queued', position: 4, prompt: 'a dog' },
      ],
      length: 5,
      max: 20,
    });
    expect(p.content).toContain('The queue holds 5 jobs (at most 20).');
    expect(p.content).toContain('`abcd` image · running · a cat');
    expect(p.content).toContain('`efgh` re-upscale · position 4 · a dog');
  });

  it('/queue and /settings show on a gateway whether GPU workers are online', () => {
    const mine: Parameters<typeof renderQueue>[0]['mine'] = [];
    expect(renderQueue({ mine, length: 1, max: 20, workersLive: 0 }).content.split('\n')).toEqual([
      'The queue holds 1 job (at most 20).',
      '⚠️ No GPU worker is online right now; queued jobs will start when one comes back.',
      'You have no jobs waiting or running.',
    ]);
    expect(renderQueue({ mine, length: 1, max: 20, workersLive: 2 }).content).not.toContain('GPU worker');
    expect(renderQueue({ mine, length: 1, max: 20 }).content).not.toContain('GPU worker');
    const settings = effectiveSettings(loadConfig({}));
    const budget = { dailyUnits: 50, setHere: false };
    expect(renderSettings(settings, budget, 2).content.split('\n').at(-1)).toBe('GPU workers online: 2');
    expect(renderSettings(settings, budget, 0).content.split('\n').at(-1)).toBe(
      'GPU workers online: **none** (queued jobs wait until one starts)',
    );
    expect(renderSettings(settings, budget).content).not.toContain('GPU worker');
  });

  it.each([
    [0, '0'],
    [3.333, '3.33'],
    [10, '10'],
    [0.5, '0.5'],
    [Number.POSITIVE_INFINITY, 'unlimited'],
  ])('units(%d) = %s', (n, text) => {
    expect(units(n)).toBe(text);
  });
});

describe('uploads over the limit', () => {
  async function bigPng(): Promise<Buffer> {
    const raw = Buffer.alloc(256 * 256 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) % 256;
    return sharp(raw, { raw: { width: 256, height: 256, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
  }

  it('are sent as WebP with a note; files within the limit are left alone', async () => {
    const data = await bigPng();
    const small = { name: 'small.png', data: Buffer.from('x') };
    const { files, notes } = await fitUploads([small, { name: '1-hires.png', data }], data.length - 1);
    expect(files[0]).toBe(small);
    expect(files[1]?.name).toBe('1-hires.webp');
    expect(files[1]?.data.subarray(0, 4).toString()).toBe('RIFF');
    expect(files[1]?.data.length).toBeLessThan(data.length);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('sent as 1-hires.webp');
  });

  it('a file that fits in no form is left out, with a note', async () => {
    const { files, notes } = await fitUploads([{ name: 'a.png', data: await bigPng() }], 10);
    expect(files).toEqual([]);
    expect(notes[0]).toContain('is left out');
  });
});
