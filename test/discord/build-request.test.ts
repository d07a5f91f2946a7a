// Slash options → GenerationRequest: defaults, server defaults, pasted infotext, explicit options,
// and the bounds checked again on the server.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { paramScanWork } from '../../src/diffusion/infotext-params.ts';
import { promptToChunks } from '../../src/diffusion/prompt/chunks.ts';
import type { GenerationRequest } from '../../src/diffusion/request.ts';
import { ClipTokenizer } from '../../src/diffusion/tokenizer/clip-tokenizer.ts';
import {
  buildRequest,
  findBlockedWord,
  type GenerationOptions,
  parseDenoiseList,
  type RequestNote,
} from '../../src/discord/build-request.ts';
import { readPastedInfotext, restoreLineBreaks } from '../../src/discord/paste.ts';
import { effectiveSettings, type StoredGuildSettings } from '../../src/discord/settings.ts';
import { CLIP_TOKENIZER_DIR } from '../support/fixtures.ts';

const config = loadConfig({});
const model = { name: 'v1-5-pruned-emaonly', hash: '6ce0161689' };
const settings = (stored?: Partial<StoredGuildSettings>) =>
  effectiveSettings(config, { defaults: {}, limits: {}, blockedWords: [], ...stored });

function build(
  options: Partial<GenerationOptions>,
  stored?: Partial<StoredGuildSettings>,
  denoises?: number[],
) {
  return buildRequest(
    { prompt: 'a lighthouse', ...options },
    { settings: settings(stored), model, denoises },
  );
}

function ok(result: ReturnType<typeof build>) {
  if (!result.ok) throw new Error(`expected a request, got: ${result.error.message}`);
  return result.value;
}

function refused(result: ReturnType<typeof build>) {
  if (result.ok) throw new Error('expected a refusal');
  return { code: result.error.code, message: result.error.message, context: result.error.context };
}

const GUIDE_PROMPT =
  'masterpiece, best quality, 1girl, eye focus, katsuragi misato, ribbed sweater, purple hair, brown eyes';
const GUIDE_NEGATIVE =
  'lowres, (bad anatomy), text, cropped, worst quality, low quality, jpeg artifacts, signature, watermark, username, artist name, (out of frame), black and white, obese, censored, child, loli, long fingernails';
const GUIDE_PARAMS =
  'Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1506386276, Size: 512x512, Model hash: 63c46c36, ENSD: 31337';
const GUIDE = `${GUIDE_PROMPT}\nNegative prompt: ${GUIDE_NEGATIVE}\n${GUIDE_PARAMS}`;

describe('defaults', () => {
  it('follow the guide: 512×512, 30 steps, DPM++ 2M Karras, CFG 7, hires ×2 Latent, denoise 0.6', () => {
    const { request, notes } = ok(build({}));
    expect(request).toMatchObject({
      prompt: 'a lighthouse',
      negative: '',
      width: 512,
      height: 512,
      steps: 30,
      sampler: 'DPM++ 2M',
      scheduler: 'Karras',
      cfg: 7,
      hiresScale: 2,
      hiresSteps: 0,
      upscaler: 'Latent',
      denoise: 0.6,
      rng: 'nv',
      ensd: 0,
    });
    expect(request.seed).toBeGreaterThanOrEqual(0);
    expect(request.seed).toBeLessThanOrEqual(4294967294);
    expect(notes).toEqual([]);
  });

  it('take RNG_SOURCE and ENSD from the bot settings', () => {
    const s = effectiveSettings(loadConfig({ RNG_SOURCE: 'cpu', ENSD: '31337' }));
    const result = buildRequest({ prompt: 'x' }, { settings: s, model });
    expect(result.ok && result.value.request).toMatchObject({ rng: 'cpu', ensd: 31337 });
  });

  it('fit inside tighter bot limits instead of refusing every default job', () => {
    const s = effectiveSettings(loadConfig({ MAX_STEPS: '20', MAX_BASE_SIDE: '256', MAX_HIRES_SIDE: '384' }));
    const result = buildRequest({ prompt: 'x' }, { settings: s, model });
    expect(result.ok && result.value.request).toMatchObject({
      steps: 20,
      width: 256,
      height: 256,
      hiresScale: 1.5,
    });
  });
});

describe('layering', () => {
  const server = { defaults: { steps: 25, denoise: 0.55, negative: 'blurry', sampler: 'Euler a' as const } };

  it.each<[string, Partial<GenerationOptions>, Record<string, unknown>]>([
    [
      'server defaults replace the built-in ones',
      {},
      { steps: 25, denoise: 0.55, negative: 'blurry', sampler: 'Euler a' },
    ],
    [
      'an explicit option wins over the server default',
      { steps: 12, negative: '' },
      { steps: 12, negative: '' },
    ],
    [
      'a sampler chosen by name takes its own schedule',
      { sampler: 'Euler' },
      { sampler: 'Euler', scheduler: 'Automatic' },
    ],
    [
      'a legacy sampler name carries its schedule',
      { sampler: 'dpm++ 2m karras' },
      { sampler: 'DPM++ 2M', scheduler: 'Karras' },
    ],
    ['size as WIDTHxHEIGHT', { size: '512x768' }, { width: 512, height: 768 }],
    ['a given seed is kept', { seed: 42 }, { seed: 42 }],
    ['upscaler by name, ignoring case', { upscaler: 'latent (bicubic)' }, { upscaler: 'Latent (bicubic)' }],
    ['hires options', { hiresScale: 1.5, hiresSteps: 10 }, { hiresScale: 1.5, hiresSteps: 10 }],
  ])('%s', (_name, options, expected) => {
    expect(ok(build(options, server)).request).toMatchObject(expected);
  });

  it('seed -1 draws a random seed', () => {
    const { request } = ok(build({ seed: -1 }));
    expect(request.seed).not.toBe(-1);
    expect(request.seed).toBeGreaterThanOrEqual(0);
  });
});

describe('bounds, checked again on the server with the option names members type', () => {
  it.each<[Partial<GenerationOptions>, string]>([
    [{ steps: 51 }, 'steps must be a whole number from 1 to 50 (got 51)'],
    [{ steps: 2.5 }, 'steps must be a whole number from 1 to 50 (got 2.5)'],
    [{ cfg: 31 }, 'cfg must be a number from 1 to 30 (got 31)'],
    [{ denoise: 0 }, 'denoise must be greater than 0 and at most 1 (got 0)'],
    [{ size: '1024x1024' }, 'size must be a whole number from 64 to 768 (got 1024)'],
    [{ size: '500x512' }, 'size must be a multiple of 8 (got 500)'],
    [{ size: 'big' }, 'size must be WIDTHxHEIGHT, e.g. 512x768 (got "big")'],
    [{ hiresScale: 4 }, 'hires_scale makes a 2048×2048 image; the largest side allowed is 1536'],
    [{ hiresSteps: 99 }, 'hires_steps must be a whole number from 0 to 50 (got 99)'],
    [{ seed: 4294967296 }, 'seed must be a whole number from 0 to 4294967295 (got 4294967296)'],
    [{ seed: -2 }, 'seed must be -1 (random) or a whole number from 0 to 4294967295 (got -2)'],
    [{ prompt: '  ' }, 'prompt must not be empty'],
    [{ prompt: 'x'.repeat(1001) }, 'prompt must be at most 1000 characters (got 1001)'],
    [
      { sampler: 'LMS' },
      'sampler must be one of Euler, Euler a, DPM++ 2M, DPM++ 2M SDE, DDIM, DPM++ 2M Karras, DPM++ 2M SDE Karras, DPM++ 2M SDE Exponential (got "LMS")',
    ],
    [
      { upscaler: 'ESRGAN_4x' },
      'upscaler must be a latent upscaler: Latent, Latent (antialiased), Latent (bicubic), Latent (bicubic antialiased), Latent (nearest), Latent (nearest-exact) (got "ESRGAN_4x")',
    ],
  ])('%o → "%s"', (options, message) => {
    expect(refused(build(options))).toMatchObject({ code: 'bad-option', message });
  });

  it('a server limit narrows the bot limit', () => {
    expect(refused(build({ steps: 30 }, { limits: { steps: 20 } })).message).toBe(
      'steps must be a whole number from 1 to 20 (got 30)',
    );
  });

  it('a server limit cannot widen the bot limit', () => {
    expect(refused(build({ steps: 60 }, { limits: { steps: 100 } })).message).toBe(
      'steps must be a whole number from 1 to 50 (got 60)',
    );
  });

  it('names the option in the context for the reply', () => {
    expect(refused(build({ hiresScale: 4 })).context).toEqual({ option: 'hires_scale' });
  });
});

describe('notes', () => {
  it.each<[Partial<GenerationOptions>, number[] | undefined, RequestNote[]]>([
    [{ denoise: 0.45 }, undefined, [{ kind: 'soft-denoise', denoise: 0.45 }]],
    [{ denoise: 0.5 }, undefined, []],
    [{}, [0.3, 0.5, 0.7], [{ kind: 'soft-denoise', denoise: 0.3 }]],
  ])('%o %o', (options, denoises, notes) => {
    expect(ok(build(options, undefined, denoises)).notes).toEqual(notes);
  });
});

describe('blocked words', () => {
  it('refuses a prompt with a blocked word, whole words only, ignoring case', () => {
    const stored = { blockedWords: ['gore'] };
    expect(refused(build({ prompt: 'a lot of GORE, please' }, stored))).toMatchObject({
      code: 'bad-option',
      message: 'Your prompt contains “gore”, which this server does not allow. Remove it and try again.',
      context: { option: 'prompt' },
    });
    expect(build({ prompt: 'gorgeous gorestuff' }, stored).ok).toBe(true);
    expect(build({ prompt: 'a cat', negative: 'gore' }, stored).ok).toBe(true);
  });

  // the review's bypasses: each reaches the text encoder as the same token ids as "a nsfw cat"
  const BYPASSES = [
    'a ＮＳＦＷ cat', // fullwidth letters
    'a ns()fw cat', // empty emphasis brackets
    'a ns[]fw cat',
    'a &#110;sfw cat', // an HTML entity
    'a ns\\fw cat', // a lone backslash
    'a ns\u0001fw cat', // a control character
  ];

  it.each(BYPASSES)('a blocked word written as %j is the same tokens, and refused', (prompt) => {
    const tokenizer = ClipTokenizer.fromFolder(CLIP_TOKENIZER_DIR);
    expect(promptToChunks(prompt, tokenizer)).toEqual(promptToChunks('a nsfw cat', tokenizer));
    expect(refused(build({ prompt }, { blockedWords: ['nsfw'] }))).toMatchObject({
      message: 'Your prompt contains “nsfw”, which this server does not allow. Remove it and try again.',
      context: { option: 'prompt' },
    });
  });

  it('a blocked word spelled in fullwidth letters is the word', () => {
    expect(refused(build({ prompt: 'a nsfw cat' }, { blockedWords: ['ＮＳＦＷ'] })).message).toBe(
      'Your prompt contains “ＮＳＦＷ”, which this server does not allow. Remove it and try again.',
    );
  });

  it('still whole words only: a word containing the blocked one passes, in any of those spellings', () => {
    const stored = { blockedWords: ['nsfw'] };
    for (const prompt of ['nsfwish art', 'a ＮＳＦＷish cat', 'a ns()fwish cat', 'sfw'])
      expect(build({ prompt }, stored).ok).toBe(true);
  });

  it.each<[string, string[], string | undefined]>([
    ['a (gore:1.2) scene', ['gore'], 'gore'],
    ['über alles', ['über'], 'über'],
    ['nothing here', ['gore', 'blood'], undefined],
    ['multi word phrase here', ['word phrase'], 'word phrase'],
    // an entry written as a prompt is read as one: its emphasis is not part of the word
    ['a [loli] cat', ['[loli]'], '[loli]'],
    ['(masterpiece:1.2), 1girl', ['(masterpiece:1.2)'], '(masterpiece:1.2)'],
    ['a masterpiece', ['((masterpiece))'], '((masterpiece))'],
  ])('findBlockedWord(%j, %j) = %j', (text, words, found) => {
    expect(findBlockedWord(text, words)).toBe(found);
  });
});

describe('/compare denoise lists', () => {
  it.each<[string, number[] | string]>([
    ['0.3,0.5,0.7', [0.3, 0.5, 0.7]],
    ['0.3, 0.5', [0.3, 0.5]],
    ['0.2 0.4 0.6 0.8', [0.2, 0.4, 0.6, 0.8]],
    ['0.5,0.5,0.7', [0.5, 0.7]],
    ['0.5', 'denoise must list 2 to 4 different values, e.g. 0.3,0.5,0.7 (got "0.5")'],
    [
      '0.1,0.2,0.3,0.4,0.5',
      'denoise must list 2 to 4 different values, e.g. 0.3,0.5,0.7 (got "0.1,0.2,0.3,0.4,0.5")',
    ],
    ['0.3,1.5', 'denoise values must be greater than 0 and at most 1 (got "1.5")'],
    ['0.3,abc', 'denoise values must be greater than 0 and at most 1 (got "abc")'],
    ['0,0.5', 'denoise values must be greater than 0 and at most 1 (got "0")'],
  ])('%j', (text, expected) => {
    const result = parseDenoiseList(text);
    if (typeof expected === 'string') expect(!result.ok && result.error.message).toBe(expected);
    else expect(result.ok && result.value).toEqual(expected);
  });
});

describe('parameters (a pasted A1111 infotext)', () => {
  const guideSettings = {
    prompt: GUIDE_PROMPT,
    negative: GUIDE_NEGATIVE,
    steps: 30,
    sampler: 'DPM++ 2M',
    scheduler: 'Karras',
    cfg: 7,
    seed: 1506386276,
    width: 512,
    height: 512,
    ensd: 31337,
    rng: 'nv',
    hiresScale: 2,
    upscaler: 'Latent',
    denoise: 0.6,
  };

  it.each([
    ['as PNG Info shows it', GUIDE],
    ['squashed onto one line, as a slash option delivers it', GUIDE.replaceAll('\n', ' ')],
    ['with Windows line breaks', GUIDE.replaceAll('\n', '\r\n')],
  ])('the guide’s infotext %s gives exactly its settings', (_how, text) => {
    const { request, notes } = ok(build({ prompt: '', parameters: text }));
    expect(request).toMatchObject(guideSettings);
    expect(notes).toEqual([
      { kind: 'other-model', pastedHash: '63c46c36', pastedName: undefined, loaded: model },
    ]);
  });

  it('explicit options win over the pasted ones', () => {
    const { request } = ok(build({ prompt: 'a cat', steps: 20, seed: 7, parameters: GUIDE }));
    expect(request).toMatchObject({
      prompt: 'a cat',
      steps: 20,
      seed: 7,
      negative: GUIDE_NEGATIVE,
      ensd: 31337,
    });
  });

  it('the loaded model’s hash gives no note', () => {
    const text = GUIDE.replace('Model hash: 63c46c36', 'Model hash: 6ce0161689');
    expect(ok(build({ prompt: '', parameters: text })).notes).toEqual([]);
  });

  it('an old 8-digit hash matches a checkpoint-imported model by A1111’s old hash', () => {
    const imported = { ...model, oldHash: '63c46c36' };
    const result = buildRequest({ prompt: '', parameters: GUIDE }, { settings: settings(), model: imported });
    expect(ok(result).notes).toEqual([]);
    const other = { ...model, oldHash: '0badf00d' };
    const note = ok(
      buildRequest({ prompt: '', parameters: GUIDE }, { settings: settings(), model: other }),
    ).notes;
    expect(note).toEqual([
      { kind: 'other-model', pastedHash: '63c46c36', pastedName: undefined, loaded: other },
    ]);
  });

  it('reads hires keys, RNG: NV and RNG: CPU, and reports keys it does not reproduce', () => {
    const text = `a cat\nSteps: 20, Sampler: Euler a, CFG scale: 6, Seed: 5, Size: 512x768, Denoising strength: 0.45, RNG: NV, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: Latent (nearest), Face restoration: CodeFormer`;
    const { request, notes } = ok(build({ prompt: '', parameters: text.replaceAll('\n', ' ') }));
    expect(request).toMatchObject({
      prompt: 'a cat',
      sampler: 'Euler a',
      denoise: 0.45,
      rng: 'nv',
      hiresScale: 1.5,
      hiresSteps: 12,
      upscaler: 'Latent (nearest)',
      width: 512,
      height: 768,
    });
    expect(notes).toEqual([
      { kind: 'ignored-parameters', keys: ['Face restoration'] },
      { kind: 'soft-denoise', denoise: 0.45 },
    ]);
    const cpu = ok(build({ prompt: '', parameters: text.replace('RNG: NV', 'RNG: CPU') }));
    expect(cpu.request.rng).toBe('cpu');
  });

  it('a bad value in the paste names its key and the option, and says it came from parameters', () => {
    const text = 'a cat Steps: 20, Sampler: Heun, CFG scale: 7, Seed: 1';
    expect(refused(build({ prompt: '', parameters: text }))).toMatchObject({
      message:
        'Sampler in parameters: sampler must be one of Euler, Euler a, DPM++ 2M, DPM++ 2M SDE, DDIM, DPM++ 2M Karras, DPM++ 2M SDE Karras, DPM++ 2M SDE Exponential (got "Heun"). Type sampler to use another.',
      context: { option: 'parameters' },
    });
  });

  // A1111 values we do not have, as its PNG Info shows them (the review's pastes)
  const PASTED = 'a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x512';
  const LATENT_ONLY =
    'upscaler must be a latent upscaler: Latent, Latent (antialiased), Latent (bicubic), Latent (bicubic antialiased), Latent (nearest), Latent (nearest-exact)';

  it.each<[string, Partial<GenerationOptions>, Partial<GenerationRequest>]>([
    [
      `${PASTED}, Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+`,
      { upscaler: 'Latent' },
      { upscaler: 'Latent', sampler: 'DPM++ 2M', scheduler: 'Karras', hiresScale: 2, denoise: 0.5 },
    ],
    [
      PASTED.replace('DPM++ 2M Karras', 'DPM++ SDE Karras'),
      { sampler: 'Euler a' },
      { sampler: 'Euler a', scheduler: 'Automatic', steps: 20, cfg: 7, seed: 1 },
    ],
    [
      `${PASTED.replace('Sampler: DPM++ 2M Karras', 'Sampler: DPM++ 2M')}, Schedule type: Align Your Steps`,
      { sampler: 'Euler' },
      { sampler: 'Euler', scheduler: 'Automatic' },
    ],
    [PASTED.replace('Steps: 20', 'Steps: twenty'), { steps: 12 }, { steps: 12, sampler: 'DPM++ 2M' }],
  ])('an option typed wins over an unusable pasted value: %j with %j', (parameters, typed, expected) => {
    expect(
      ok(build({ prompt: '', parameters: parameters.replaceAll('\n', ' '), ...typed })).request,
    ).toMatchObject(expected);
  });

  it.each<[string, string]>([
    [
      `${PASTED}, Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+`,
      `Hires upscaler in parameters: ${LATENT_ONLY} (got "R-ESRGAN 4x+"). Type upscaler to use another.`,
    ],
    [
      PASTED.replace('DPM++ 2M Karras', 'DPM++ SDE Karras'),
      'Sampler in parameters: sampler must be one of Euler, Euler a, DPM++ 2M, DPM++ 2M SDE, DDIM, DPM++ 2M Karras, DPM++ 2M SDE Karras, DPM++ 2M SDE Exponential (got "DPM++ SDE Karras"). Type sampler to use another.',
    ],
    // no option sets the noise source: nothing to type instead
    [`${PASTED}, RNG: Philox`, 'RNG in parameters: rng must be cpu or nv (got "Philox").'],
    [
      PASTED.replace('Steps: 20', 'Steps: twenty'),
      'Steps in parameters: steps must be a number (got "twenty"). Type steps to use another.',
    ],
  ])('an unusable pasted value nobody typed over is refused: %j', (parameters, message) => {
    // typing some other option does not make it usable
    for (const typed of [{}, { cfg: 5 }]) {
      expect(refused(build({ prompt: '', parameters, ...typed }))).toMatchObject({
        code: 'bad-option',
        message,
        context: { option: 'parameters' },
      });
    }
  });

  it('pasted values are checked against the limits too', () => {
    const text = 'a cat Steps: 80, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512';
    expect(refused(build({ prompt: '', parameters: text })).message).toBe(
      'steps must be a whole number from 1 to 50 (got 80)',
    );
  });
});

describe('restoreLineBreaks', () => {
  it.each<[string, string]>([
    ['a cat', 'a cat'],
    ['a cat Negative prompt: dog', 'a cat\nNegative prompt: dog'],
    ['a cat Steps: 20, Sampler: Euler, Seed: 1', 'a cat\nSteps: 20, Sampler: Euler, Seed: 1'],
    ['Steps: 20, Sampler: Euler, Seed: 1', 'Steps: 20, Sampler: Euler, Seed: 1'],
    // "Steps: 3" inside the prompt is not the parameter line: the last one that parses is
    [
      'Steps: 3 of a staircase Steps: 20, Sampler: Euler, Seed: 1',
      'Steps: 3 of a staircase\nSteps: 20, Sampler: Euler, Seed: 1',
    ],
    ['multi\nline kept', 'multi\nline kept'],
  ])('%j', (input, output) => {
    expect(restoreLineBreaks(input)).toBe(output);
  });

  // the review's paste that held the main thread for seconds: a `Steps:` every 10 characters, none
  // of them the parameter line, each scanned to the end again (quadratic)
  const hostile = (length: number, k: number) => {
    const head = 'x Steps: ,'.repeat(k);
    return `${head} ${'a '.repeat((length - head.length - 1) >> 1)}`;
  };

  it.each([
    [4000, 100],
    [5999, 200],
  ])('a %i-character paste with %i `Steps:` costs one scan of the text per parse', (length, k) => {
    const text = hostile(length, k);
    paramScanWork.positions = 0;
    expect(restoreLineBreaks(text)).toBe(text.trim());
    // restoreLineBreaks scans the text once, whatever the number of `Steps:` in it
    expect(paramScanWork.positions).toBe(text.trim().length + 1);
    paramScanWork.positions = 0;
    const pasted = readPastedInfotext(text);
    // the line is k pairs `x Steps: ` (empty values): nothing A1111 knows, all prompt-less
    expect(pasted.ok && pasted.value.request).toEqual({ prompt: '', negative: '', rng: 'nv' });
    expect(pasted.ok && pasted.value.ignored).toEqual(['x Steps']);
    // three scans (restore, parse, model fields), each a pass over the text plus one per match
    expect(paramScanWork.positions).toBe(3 * (text.trim().length + 1) + 2 * k);
  });

  it('finds the parameter line after a hostile run of `Steps:`', () => {
    const text = `${'x Steps: ,'.repeat(200)} a cat Steps: 20, Sampler: Euler, Seed: 1`;
    expect(restoreLineBreaks(text)).toBe(
      `${'x Steps: ,'.repeat(200)} a cat\nSteps: 20, Sampler: Euler, Seed: 1`,
    );
  });

  it('keeps the model name and hash for the note', () => {
    const pasted = readPastedInfotext('x Steps: 20, Sampler: Euler, Seed: 1, Model hash: abc, Model: "a, b"');
    expect(pasted.ok && pasted.value.model).toEqual({ hash: 'abc', name: 'a, b' });
  });
});
