// `npm run generate` flags that node's parser alone words badly: --help, and a value that starts
// with a dash after a space.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCliArgs, USAGE, UsageError, wantsHelp } from '../../src/cli/args.ts';
import { generate } from './run-cli.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-cli-args-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function problem(argv: string[]): string {
  try {
    parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('parsed without a problem');
}

describe('--help', () => {
  it('--help and -h print the usage on stdout and exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const run = await generate(['--model', 'x', flag], { cwd: work });
      expect(run.stderr).toBe('');
      expect(run.stdout).toBe(`${USAGE}\n`);
      expect(run.status).toBe(0);
    }
  });

  it('is not asked for by a value that reads -h', () => {
    expect(wantsHelp(['--help'])).toBe(true);
    expect(wantsHelp(['--prompt', 'x', '-h'])).toBe(true);
    expect(wantsHelp(['--prompt', '-h'])).toBe(false);
    expect(wantsHelp(['--prompt=-h', '--out', 'o'])).toBe(false);
  });
});

describe('a value starting with a dash', () => {
  it('after a space names the flag and the way to write it', () => {
    expect(problem(['--model', 'm', '--prompt', 'p', '--negative', '-blurry', '--out', 'o'])).toBe(
      '--negative "-blurry": a value starting with a dash reads as another option; write --negative=-blurry',
    );
  });

  it('written with = is the value', () => {
    const job = parseCliArgs(['--model', 'm', '--prompt', 'p', '--negative=-blurry', '--out', 'o']);
    expect(job.request.negative).toBe('-blurry');
  });
});

describe('--denoise lists', () => {
  const base = ['--model', 'm', '--prompt', 'p', '--out', 'o'];
  // n values spread over 0.05 … 0.95 (each within the hires schedule's reach)
  const values = (n: number) =>
    Array.from({ length: n }, (_, i) => (0.05 + (0.9 * i) / n).toFixed(4)).join(',');

  it('refuses more values than one compare sheet holds under 268 megapixels (16383²), before any work', () => {
    // 4096×4096 images under a 40-pixel label: 16383² / (4096 · 4136) = 15.8, so 15 fit
    const big = [...base, '--width', '1024', '--height', '1024', '--hires-scale', '4'];
    expect(parseCliArgs([...big, '--denoise', values(15)]).denoises).toHaveLength(15);
    expect(() => parseCliArgs([...big, '--denoise', values(16)])).toThrow(
      new UsageError(
        '--denoise: 16 values at 4096×4096 make a compare sheet over 268 megapixels; give at most 15',
      ),
    );
    // 1024×1024: 16383² / (1024 · 1064) = 246.3
    const mid = [...base, '--width', '512', '--height', '512', '--hires-scale', '2'];
    expect(parseCliArgs([...mid, '--denoise', values(246)]).denoises).toHaveLength(246);
    expect(() => parseCliArgs([...mid, '--denoise', values(250)])).toThrow(/give at most 246$/);
  });
});

describe('numbers and names as people write them', () => {
  const base = ['--model', 'm', '--prompt', 'p', '--out', 'o'];

  it('takes decimal numbers only: 0x10, 0b11 and 0o7 are not a seed of 16, 3 or 7', () => {
    for (const raw of ['0x10', '0b11', '0o7', '1_000', 'Infinity'])
      expect(() => parseCliArgs([...base, '--seed', raw]), raw).toThrow(
        new UsageError(`--seed must be a number (got "${raw}")`),
      );
    expect(parseCliArgs([...base, '--seed', '16']).request.seed).toBe(16);
    expect(parseCliArgs([...base, '--cfg', '7.5']).request.cfg).toBe(7.5);
    expect(parseCliArgs([...base, '--cfg', '.5e1']).request.cfg).toBe(5);
  });

  it('takes --dtype in any case, as MODEL_DTYPE does', () => {
    expect(parseCliArgs([...base, '--dtype', 'FP16']).dtype).toBe('fp16');
    expect(() => parseCliArgs([...base, '--dtype', 'bf16'])).toThrow(
      new UsageError('--dtype must be fp32 or fp16 (got "bf16")'),
    );
  });
});
