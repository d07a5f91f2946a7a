// `npm run generate` end to end: a child process on a tiny optimum-layout folder.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngText } from '../../src/diffusion/png-text.ts';
import { writeTinyModel } from '../support/tiny-model.ts';
import { generate as run } from './run-cli.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-cli-'));
const modelDir = path.join(work, 'tiny-sd15');
const generate = (args: string[]) => run(args, { cwd: work });

beforeAll(() => {
  writeTinyModel(modelDir, { layout: 'optimum' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const common = [
  '--model',
  modelDir,
  '--prompt',
  'a red fox',
  '--seed',
  '1506386276',
  '--width',
  '72',
  '--height',
  '64',
];

describe('npm run generate', () => {
  it('writes base.png and upscaled.png of the right sizes with the infotext, byte-identical per seed', async () => {
    const out = [path.join(work, 'a'), path.join(work, 'b')];
    for (const dir of out) {
      const run = await generate([...common, '--steps', '6', '--hires-scale', '1.5', '--out', dir]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('Seed: 1506386276, Size: 72x64');
    }
    const [a, b] = out as [string, string];
    expect(await sharp(path.join(a, 'base.png')).metadata()).toMatchObject({ width: 72, height: 64 });
    // int(72·1.5) = 108 → 104; int(64·1.5) = 96
    expect(await sharp(path.join(a, 'upscaled.png')).metadata()).toMatchObject({ width: 104, height: 96 });
    for (const name of ['base.png', 'upscaled.png']) {
      expect(readFileSync(path.join(a, name)).equals(readFileSync(path.join(b, name)))).toBe(true);
    }
    const text = readPngText(readFileSync(path.join(a, 'upscaled.png'))).get('parameters');
    expect(text).toMatch(
      /^a red fox\nSteps: 6, Sampler: DPM\+\+ 2M, Schedule type: Karras, .*Model: tiny-sd15, Denoising strength: 0\.7, RNG: NV, Hires upscale: 1\.5, Hires upscaler: Latent/,
    );
  });

  it('a denoise list gives one upscaled image per value and a comparison sheet', async () => {
    const dir = path.join(work, 'list');
    const run = await generate([
      ...common,
      '--steps',
      '4',
      '--denoise',
      '0.3,0.6',
      '--upscaler',
      'Latent (bicubic)',
      '--out',
      dir,
    ]);
    expect(run.status).toBe(0);
    const a = readFileSync(path.join(dir, 'upscaled-0.3.png'));
    const b = readFileSync(path.join(dir, 'upscaled-0.6.png'));
    expect(a.equals(b)).toBe(false);
    expect(readPngText(b).get('parameters')).toContain('Denoising strength: 0.6');
    const sheet = await sharp(path.join(dir, 'compare.png')).metadata();
    expect(sheet.width).toBe(2 * 144);
    expect(sheet.height).toBeGreaterThan(128);
  });

  it.each([
    [['--denoise', '0'], 'hiresbot generate: --denoise must be greater than 0 and at most 1 (got 0)'],
    [['--sampler', 'LMS'], 'hiresbot generate: --sampler must be one of'],
    [['--width', '500'], 'hiresbot generate: --width must be a multiple of 8 (got 500)'],
    [['--steps', 'ten'], 'hiresbot generate: --steps must be a number (got "ten")'],
    [['--wat'], "hiresbot generate: Unknown option '--wat'"],
    // used to abort the whole process: a 2000-step DDIM grid has a stride of 0
    [
      ['--sampler', 'DDIM', '--denoise', '0.01', '--steps', '20'],
      'hiresbot generate: --denoise must be at least 0.02 with 20 hires steps (got 0.01)',
    ],
    [
      ['--denoise', '0.000001', '--steps', '150'],
      'hiresbot generate: --denoise must be at least 0.15 with 150 hires steps (got 0.000001)',
    ],
  ])('exits 2 with one line for %j', async (extra, message) => {
    const run = await generate([...common, '--out', path.join(work, 'x'), ...extra]);
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(message);
  });

  it('RNG_SOURCE and ENSD from .env are the defaults of --rng and --ensd; the flags still win', async () => {
    const home = path.join(work, 'with-env');
    mkdirSync(home);
    writeFileSync(path.join(home, '.env'), 'RNG_SOURCE=cpu\nENSD=31337\n');
    const args = (out: string, extra: string[] = []) => [
      ...common,
      '--steps',
      '4',
      '--sampler',
      'Euler a',
      '--hires-scale',
      '1',
      '--out',
      path.join(home, out),
      ...extra,
    ];
    const fromEnv = await run(args('env'), { cwd: home });
    expect(fromEnv.stderr).toBe('');
    expect(fromEnv.stdout).toMatch(/ENSD: 31337, RNG: CPU/);
    // the same job spelled out on the command line, run from a folder without .env: the same image
    const spelled = await run(args('flags', ['--rng', 'cpu', '--ensd', '31337']), { cwd: work });
    expect(spelled.stderr).toBe('');
    expect(readFileSync(path.join(home, 'flags', 'base.png'))).toEqual(
      readFileSync(path.join(home, 'env', 'base.png')),
    );
    const overridden = await run(args('nv', ['--rng', 'nv', '--ensd', '0']), { cwd: home });
    expect(overridden.stdout).not.toMatch(/ENSD/);
    expect(overridden.stdout).toMatch(/RNG: NV/);
    expect(spelled.status).toBe(0);
  });

  it('exits 1 naming what is missing from a broken model folder', async () => {
    const broken = path.join(work, 'broken');
    mkdirSync(path.join(broken, 'unet'), { recursive: true });
    writeFileSync(path.join(broken, 'unet', 'model.onnx'), '');
    const run = await generate(['--model', broken, '--prompt', 'x', '--out', path.join(work, 'y')]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      `model folder ${broken} is missing text_encoder/model.onnx (the CLIP text encoder)`,
    );
  });
});

describe('--model is found as the bot finds MODEL_DIR', () => {
  const small = ['--prompt', 'a red fox', '--seed', '7', '--steps', '2', '--width', '64', '--height', '64'];

  it('a folder holding one model folder runs that model', async () => {
    const holder = path.join(work, 'holder');
    mkdirSync(holder);
    symlinkSync(modelDir, path.join(holder, 'tiny-sd15'));
    const viaHolder = await generate(['--model', holder, ...small, '--out', path.join(work, 'via-holder')]);
    expect(viaHolder.stderr).toBe('');
    expect(viaHolder.status).toBe(0);
    const direct = await generate(['--model', modelDir, ...small, '--out', path.join(work, 'direct')]);
    expect(direct.status).toBe(0);
    for (const name of ['base.png', 'upscaled.png']) {
      expect(readFileSync(path.join(work, 'via-holder', name))).toEqual(
        readFileSync(path.join(work, 'direct', name)),
      );
    }
  });

  it("several models, none, or no such folder: exit 2 with the bot's reason, naming --model", async () => {
    const several = path.join(work, 'several');
    mkdirSync(several);
    symlinkSync(modelDir, path.join(several, 'a'));
    symlinkSync(modelDir, path.join(several, 'b'));
    const empty = path.join(work, 'empty');
    mkdirSync(empty);
    const missing = path.join(work, 'no-such-folder');
    const expected: [string, string][] = [
      [
        several,
        `--model (${several}) holds several models (${several}/a, ${several}/b): set --model to one of them.`,
      ],
      [
        empty,
        `No Stable Diffusion model in ${empty}: drop an SD 1.x .safetensors checkpoint or an SD 1.5 ONNX folder (with unet/model.onnx) into ${empty}/ — see README "Get a model", or set --model.`,
      ],
      [
        missing,
        `No Stable Diffusion model in ${missing} (folder not found): drop an SD 1.x .safetensors checkpoint or an SD 1.5 ONNX folder (with unet/model.onnx) into ${missing}/ — see README "Get a model", or set --model.`,
      ],
    ];
    for (const [model, reason] of expected) {
      const out = path.join(work, 'never');
      const run = await generate(['--model', model, ...small, '--out', out]);
      expect(run.stderr).toBe(`hiresbot generate: ${reason}\n`);
      expect(run.status).toBe(2);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('--vae, --dtype and MODEL_VAE are refused for an ONNX folder (they only shape an import)', async () => {
    const out = path.join(work, 'never');
    const fixed = `to .safetensors checkpoints only, and ${modelDir} is an ONNX folder (its VAE and precision were fixed when it was exported)`;
    const vae = await generate([
      '--model',
      modelDir,
      ...small,
      '--vae',
      '/nonexistent.safetensors',
      '--out',
      out,
    ]);
    expect(vae.stderr).toBe(`hiresbot generate: --vae applies ${fixed}\n`);
    expect(vae.status).toBe(2);
    const both = await generate([
      '--model',
      modelDir,
      ...small,
      '--vae',
      'v.safetensors',
      '--dtype',
      'fp16',
      '--out',
      out,
    ]);
    expect(both.stderr).toBe(`hiresbot generate: --vae and --dtype apply ${fixed}\n`);
    expect(both.status).toBe(2);
    const home = path.join(work, 'with-vae-env');
    mkdirSync(home);
    writeFileSync(path.join(home, '.env'), 'MODEL_VAE=/models/vae-ft-mse.safetensors\n');
    const fromEnv = await run(['--model', modelDir, ...small, '--out', out], { cwd: home });
    expect(fromEnv.stderr).toBe(`hiresbot generate: MODEL_VAE applies ${fixed}\n`);
    expect(fromEnv.status).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
