// `npm run generate` against input a careless or hostile user types: each case used to crash the
// process, hang, or leave a damaged file; now each ends with one line and a status, never a signal.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyModel } from '../support/tiny-model.ts';
import { type CliRun, generate as run } from './run-cli.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-cli-hostile-'));
const modelDir = path.join(work, 'tiny-sd15');
const generate = (args: string[], ulimitFileKb?: number) =>
  run(args, { cwd: work, ...(ulimitFileKb === undefined ? {} : { ulimitFileKb }) });
const small = ['--model', modelDir, '--seed', '7', '--width', '64', '--height', '64', '--steps', '2'];
let files = 0;
/** A file in the work folder holding `content`. */
function file(content: string | Buffer): string {
  const p = path.join(work, `text-${files++}.txt`);
  writeFileSync(p, content);
  return p;
}

beforeAll(() => {
  writeTinyModel(modelDir, { layout: 'optimum' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Exit status 2, no signal, and exactly `message` as the one line on stderr. */
function expectUsageError(result: CliRun, message: string) {
  expect(result.signal).toBeNull();
  expect(result.stderr.trim().split('\n')).toEqual([`hiresbot generate: ${message}`]);
  expect(result.status).toBe(2);
}

describe('long prompts', async () => {
  const chunkCap = 'must fit in 10 chunks of 75 tokens, each BREAK starting a new one (got 147 chunks)';

  it('"a, " × 5500 on the command line is refused by the chunk cap (it used to die of SIGSEGV)', async () => {
    const result = await generate([
      ...small,
      '--prompt',
      'a, '.repeat(5500),
      '--out',
      path.join(work, 'long'),
    ]);
    expectUsageError(result, `--prompt ${chunkCap}`);
  });

  it('the same prompt from --prompt-file is refused naming that flag', async () => {
    const prompt = file('a, '.repeat(5500));
    const result = await generate([...small, '--prompt-file', prompt, '--out', path.join(work, 'long-file')]);
    expectUsageError(result, `--prompt-file ${chunkCap}`);
  });

  it('a 19 KB command line that is one token long generates (onnxruntime overflowed a 4 MB worker stack)', async () => {
    const result = await generate([
      ...small,
      '--prompt',
      `fox${' '.repeat(19_000)}`,
      '--out',
      path.join(work, 'wide'),
    ]);
    expect(result.signal).toBeNull();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readdirSync(path.join(work, 'wide')).sort()).toEqual(['base.png', 'upscaled.png']);
  });

  it('a command line over 32 KiB is refused before the model loads, pointing at --prompt-file', async () => {
    const result = await generate([
      ...small,
      '--negative',
      'é'.repeat(17_000),
      '--out',
      path.join(work, 'huge'),
    ]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /^hiresbot generate: the command line is \d+ bytes, more than the 32768 the engine allows: pass long prompts with --prompt-file FILE and --negative-file FILE\n$/,
    );
  });
});

describe('--prompt-file and --negative-file', () => {
  it('read the prompts, without the final newline, into the images and the infotext', async () => {
    const prompt = file('\uFEFFa red fox,\n(oil painting:1.2)\n');
    const negative = file('blurry\n');
    const out = path.join(work, 'files');
    const result = await generate([
      ...small,
      '--prompt-file',
      prompt,
      '--negative-file',
      negative,
      '--out',
      out,
    ]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^a red fox,\n\(oil painting:1\.2\)\nNegative prompt: blurry\nSteps: 2, /);
  });

  const nul = file('a fox\u0000');
  const latin1 = file(Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "café" in Latin-1
  const missing = path.join(work, 'no-such-prompt.txt');
  it.each([
    [['--prompt-file', nul], '--prompt-file must not contain NUL characters (\\u0000)'],
    [
      ['--prompt', 'fox', '--negative-file', nul],
      '--negative-file must not contain NUL characters (\\u0000)',
    ],
    [['--prompt-file', latin1], `--prompt-file ${latin1} must be UTF-8 text`],
    [['--prompt-file', '/dev/zero'], '--prompt-file /dev/zero must be at most 60000 bytes'],
    [['--prompt-file', missing], `--prompt-file ${missing} cannot be read (ENOENT)`],
    [['--prompt', 'fox', '--prompt-file', nul], '--prompt and --prompt-file cannot both be given'],
  ])('%j → %s', async (flags, message) => {
    expectUsageError(await generate([...small, ...flags, '--out', path.join(work, 'bad-file')]), message);
  });
});

describe('--seed -1', () => {
  it.each([[['--seed', '-1']], [['--seed=-1']]])('%j draws a random seed, as documented', async (seed) => {
    const args = [...small.filter((a) => a !== '--seed' && a !== '7'), ...seed];
    const result = await generate([...args, '--prompt', 'fox', '--out', path.join(work, 'random')]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const drawn = Number(/Seed: (\d+),/.exec(result.stdout)?.[1]);
    expect(drawn).toBeGreaterThanOrEqual(0);
    expect(drawn).toBeLessThan(4294967294);
  });
});

describe('--out', () => {
  // a model folder the loader would refuse (an empty unet/model.onnx, no other part): an --out
  // message proves --out was checked before any loading
  const broken = path.join(work, 'broken-model');
  mkdirSync(path.join(broken, 'unet'), { recursive: true });
  writeFileSync(path.join(broken, 'unet', 'model.onnx'), '');
  const noModel = ['--model', broken, '--prompt', 'fox'];

  it('that is a file is refused before the model loads', async () => {
    const notAFolder = file('x');
    expectUsageError(
      await generate([...noModel, '--out', notAFolder]),
      `--out ${notAFolder} must be a folder`,
    );
  });

  it('that cannot be created is refused before the model loads', async () => {
    const under = path.join(file('x'), 'images');
    expectUsageError(
      await generate([...noModel, '--out', under]),
      `--out ${under} cannot be created (ENOTDIR)`,
    );
  });

  it('under /proc or /sys, also through a link (/dev/fd, /dev/fd/..), is refused at once (mkdir under /proc spun for ever)', async () => {
    const kernel =
      "is under /proc, the kernel's own file system, where no folder can be made: choose another folder";
    // /dev/fd/.. is /proc/self to the kernel, though /dev by the text
    for (const out of ['/proc/hiresbot/images', '/dev/fd/hiresbot', '/dev/fd/../hiresbot']) {
      expectUsageError(await generate([...noModel, '--out', out]), `--out ${out} ${kernel}`);
    }
  });

  it('on a full disk keeps the previous images whole and leaves no temporary file', async () => {
    const out = path.join(work, 'full');
    const big = [...small, '--width', '256', '--height', '256', '--hires-scale', '1', '--prompt', 'fox'];
    expect((await generate([...big, '--out', out])).status).toBe(0);
    const before = readFileSync(path.join(out, 'base.png'));
    expect(before.length).toBeGreaterThan(4096); // so that a 4 KiB file limit cuts it
    const result = await generate([...big, '--seed', '8', '--out', out], 4);
    expect(result.stderr).toBe(
      `hiresbot generate: ${path.join(out, 'base.png')} is over the file size limit (ulimit -f): raise the limit\n`,
    );
    expect(result.status).toBe(1);
    expect(readFileSync(path.join(out, 'base.png')).equals(before)).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['base.png', 'upscaled.png']);
  });

  it("a full disk at the second image keeps the last run's pair, never a new base beside an old upscale", async () => {
    const out = path.join(work, 'pair');
    // a base under the 4 KiB file limit and an upscale over it: the first write fits, the second not
    const pair = [...small, '--width', '64', '--height', '64', '--hires-scale', '4', '--prompt', 'fox'];
    expect((await generate([...pair, '--out', out])).status).toBe(0);
    const before = {
      base: readFileSync(path.join(out, 'base.png')),
      up: readFileSync(path.join(out, 'upscaled.png')),
    };
    expect(before.base.length).toBeLessThan(4096);
    expect(before.up.length).toBeGreaterThan(4096);
    const result = await generate([...pair, '--seed', '8', '--out', out], 4);
    expect(result.stderr).toBe(
      `hiresbot generate: ${path.join(out, 'upscaled.png')} is over the file size limit (ulimit -f): raise the limit\n`,
    );
    expect(result.status).toBe(1);
    expect(readFileSync(path.join(out, 'base.png')).equals(before.base)).toBe(true);
    expect(readFileSync(path.join(out, 'upscaled.png')).equals(before.up)).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['base.png', 'upscaled.png']);
  });
});
