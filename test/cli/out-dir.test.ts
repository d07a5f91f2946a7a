// The CLI's writes of a run's images: all of them or, when one cannot be written, none.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { writeFilesReplacing } from '../../src/cli/out-dir.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-out-dir-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('replaces every file, or none when one of them is a folder, leaving no temporary file', () => {
  const base = path.join(work, 'base.png');
  const up = path.join(work, 'upscaled.png');
  writeFileSync(base, 'old base');
  writeFilesReplacing([
    [base, Buffer.from('new base')],
    [up, Buffer.from('new up')],
  ]);
  expect([readFileSync(base, 'utf8'), readFileSync(up, 'utf8')]).toEqual(['new base', 'new up']);

  // something that is not a file where the second goes: the first is not replaced either
  rmSync(up);
  mkdirSync(up);
  expect(() =>
    writeFilesReplacing([
      [base, Buffer.from('newer base')],
      [up, Buffer.from('newer up')],
    ]),
  ).toThrow(`cannot write ${up} (EISDIR: something that is not a file is there)`);
  expect(readFileSync(base, 'utf8')).toBe('new base');
  expect(readdirSync(work).sort()).toEqual(['base.png', 'upscaled.png']);
});
