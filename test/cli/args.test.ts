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
