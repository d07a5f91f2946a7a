// `npm run make-tiny-model -- DIR` as a user runs it: it writes a new folder and never writes over
// one that already holds something (a real model's weights would be replaced under its old name).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTinyModel } from './run-cli.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-make-tiny-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm run make-tiny-model', () => {
  it('writes a new folder, and an existing empty one', async () => {
    const fresh = path.join(work, 'fresh');
    const empty = path.join(work, 'empty');
    mkdirSync(empty);
    for (const dir of [fresh, empty]) {
      const result = await makeTinyModel([dir], { cwd: work });
      expect(result.status).toBe(0);
      expect(readdirSync(dir)).toContain('unet');
    }
  });

  it('refuses a folder that already holds something and leaves it untouched', async () => {
    const model = path.join(work, 'imported');
    mkdirSync(path.join(model, 'unet'), { recursive: true });
    writeFileSync(path.join(model, 'checkpoint.json'), '{"name":"real"}');
    writeFileSync(path.join(model, 'unet', 'model.onnx'), 'real weights');
    const result = await makeTinyModel([model], { cwd: work });
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `make-tiny-model: ${model} already exists and is not empty; name a new folder\n`,
    );
    expect(readdirSync(model).sort()).toEqual(['checkpoint.json', 'unet']);
    expect(readdirSync(path.join(model, 'unet'))).toEqual(['model.onnx']);
    expect(readFileSync(path.join(model, 'unet', 'model.onnx'), 'utf8')).toBe('real weights');
  });
});
