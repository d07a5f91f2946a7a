// Reference: A1111 v1.10.1 infotext example in the semantics doc §10.
import { describe, expect, it } from 'vitest';
import { formatInfotext, parseInfotext, parseInfotextFields, quote } from '../../src/diffusion/infotext.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';

const A1111_EXAMPLE =
  'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1506386276, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent, Version: v1.10.1';

const req: GenerationRequest = { ...DEFAULT_REQUEST, prompt: 'a cat', seed: 1506386276 };
const model = { name: 'v1-5-pruned-emaonly', hash: '6ce0161689' };

describe('formatInfotext', () => {
  it('writes the keys in A1111 v1.10 order, as its example (with RNG: NV, as A1111 writes its NV source)', () => {
    const text = formatInfotext(req, model, true);
    const ours = A1111_EXAMPLE.replace('Version: v1.10.1', 'Version: hiresbot-0.1.0').replace(
      'Denoising strength: 0.7, ',
      'Denoising strength: 0.7, RNG: NV, ',
    );
    expect(text).toBe(`a cat\n${ours}`);
    // read back, NV stays NV; an infotext without RNG (A1111's default GPU source) is NV too
    expect(parseInfotext(text).request.rng).toBe('nv');
    expect(parseInfotext(`a cat\n${A1111_EXAMPLE}`).request.rng).toBe('nv');
  });

  it('an external VAE adds VAE hash and VAE right after the model, as A1111 does', () => {
    const text = formatInfotext(
      req,
      { ...model, vae: { name: 'vae-ft-mse-840000', hash: '735e4c3a44' } },
      false,
    );
    expect(text).toContain(
      'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000, RNG: NV',
    );
    expect(parseInfotext(text).ignored).toEqual([]);
  });

  it('the base image carries no hires keys; Euler keeps "Automatic"', () => {
    const text = formatInfotext({ ...req, sampler: 'Euler' }, model, false);
    expect(text).toContain('Sampler: Euler, Schedule type: Automatic, CFG scale: 7');
    expect(text).not.toMatch(/Denoising|Hires/);
  });

  it('adds negative prompt, variation seed, ENSD (only for Euler a), RNG CPU and Hires steps', () => {
    const text = formatInfotext(
      {
        ...req,
        negative: 'blurry, lowres',
        sampler: 'Euler a',
        subseed: 99,
        subseedStrength: 0.25,
        ensd: 31337,
        rng: 'cpu',
        hiresSteps: 10,
        cfg: 7.5,
        hiresScale: 1.5,
      },
      model,
      true,
    );
    expect(text.split('\n')).toEqual([
      'a cat',
      'Negative prompt: blurry, lowres',
      'Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, Seed: 1506386276, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Variation seed: 99, Variation seed strength: 0.25, Denoising strength: 0.7, ENSD: 31337, RNG: CPU, Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent, Version: hiresbot-0.1.0',
    ]);
    expect(formatInfotext({ ...req, ensd: 31337 }, model, true)).not.toContain('ENSD');
  });

  it('quotes values holding a comma, colon or newline as JSON', () => {
    expect(quote('Latent (bicubic)')).toBe('Latent (bicubic)');
    expect(quote('a, b')).toBe('"a, b"');
    expect(quote('x: "y"')).toBe('"x: \\"y\\""');
  });
});

describe('parseInfotext', () => {
  it('reads A1111’s own example back into a request', () => {
    const { request, ignored } = parseInfotext(
      `a cat, (masterpiece:1.2)\nNegative prompt: blurry\n${A1111_EXAMPLE}`,
    );
    expect(request).toEqual({
      prompt: 'a cat, (masterpiece:1.2)',
      negative: 'blurry',
      steps: 20,
      sampler: 'DPM++ 2M',
      scheduler: 'Karras',
      cfg: 7,
      seed: 1506386276,
      width: 512,
      height: 512,
      denoise: 0.7,
      rng: 'nv',
      hiresScale: 2,
      hiresSteps: 0,
      upscaler: 'Latent',
    });
    expect(ignored).toEqual([]);
  });

  it('round-trips everything we write', () => {
    const full: GenerationRequest = {
      ...req,
      prompt: 'line one\nline two',
      negative: 'bad: hands, extra fingers',
      sampler: 'Euler a',
      scheduler: 'Exponential',
      subseed: 7,
      subseedStrength: 0.5,
      ensd: 31337,
      rng: 'cpu',
      hiresSteps: 12,
      hiresScale: 1.75,
      upscaler: 'Latent (bicubic antialiased)',
      width: 640,
      height: 384,
    };
    expect(parseInfotext(formatInfotext(full, model, true)).request).toEqual(full);
  });

  it('understands pre-1.9 sampler names and reports keys it cannot reproduce', () => {
    const { request, ignored } = parseInfotext(
      'a dog\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 5, Size: 512x768, Face restoration: CodeFormer',
    );
    expect(request).toMatchObject({
      sampler: 'DPM++ 2M',
      scheduler: 'Karras',
      cfg: 6.5,
      width: 512,
      height: 768,
    });
    expect(ignored).toEqual(['Face restoration']);
  });

  it('a prompt without a parameter line is all prompt', () => {
    expect(parseInfotextFields('just words: here').prompt).toBe('just words: here');
  });

  it('reads numbers in decimal, as A1111 does: a pasted Steps: 0x10 is unusable, not 16', () => {
    const { request, unusable } = parseInfotext('x\nSteps: 0x10, Seed: 12, Size: 512x512');
    expect(unusable.map(({ key, error }) => [key, error.message])).toEqual([
      ['Steps', 'steps must be a number (got "0x10")'],
    ]);
    expect(request.steps).toBeUndefined();
    expect(request.seed).toBe(12);
  });

  it('reports an upscaler that is not a latent mode as unusable, naming the option, and reads the rest', () => {
    const { request, unusable } = parseInfotext(
      'x\nSteps: 20, Seed: 1, Size: 512x512, Hires upscaler: R-ESRGAN 4x+',
    );
    expect(unusable.map(({ key, error }) => [key, error.option, error.message])).toEqual([
      [
        'Hires upscaler',
        'upscaler',
        'upscaler must be a latent upscaler: Latent, Latent (antialiased), Latent (bicubic), Latent (bicubic antialiased), Latent (nearest), Latent (nearest-exact) (got "R-ESRGAN 4x+")',
      ],
    ]);
    expect(request).toEqual({
      prompt: 'x',
      negative: '',
      steps: 20,
      seed: 1,
      width: 512,
      height: 512,
      rng: 'nv',
    });
  });
});
