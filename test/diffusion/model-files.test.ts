// The loader and the model hash refuse files that are not regular files (a FIFO blocks a read for
// ever, /dev/zero never ends) and name the file in every error about its contents.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { modelHash } from '../../src/diffusion/model/model-hash.ts';
import { loadSdModel, ModelLoadError } from '../../src/diffusion/model/sd-model.ts';
import { noModelReason, resolveModelDir } from '../../src/diffusion/model-dir.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = mkdtempSync(path.join(tmpdir(), 'hiresbot-model-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh tiny model folder with `file` (relative) replaced by `make(absolutePath)`. */
function folderWith(file: string, make: (p: string) => void, layout: 'optimum' | 'diffusers' = 'optimum') {
  const dir = path.join(root, `m${count++}`);
  writeTinyModel(dir, { layout });
  const p = path.join(dir, file);
  rmSync(p);
  make(p);
  return { dir, file: p };
}
const fifo = (p: string) => execFileSync('mkfifo', [p]);
const garbage = (p: string) => writeFileSync(p, '{"oops": ');

describe('only regular files are opened', () => {
  it.each([
    'unet/model.onnx',
    'text_encoder/model.onnx',
    'unet/model.onnx_data',
    'tokenizer/vocab.json',
    'tokenizer/merges.txt',
    'vae_decoder/config.json',
  ])('a FIFO as %s is refused, naming it (it used to block the loader for ever)', async (name) => {
    const { dir, file } = folderWith(name, fifo);
    await expect(loadSdModel(dir)).rejects.toThrow(
      new ModelLoadError(`${file} must be a regular file, but it is a named pipe (FIFO)`),
    );
  });

  it('weights that are a symlink to /dev/zero are refused by the loader and by the hash', async () => {
    const { dir, file } = folderWith('unet/weights.pb', (p) => symlinkSync('/dev/zero', p), 'diffusers');
    const refusal = new ModelLoadError(`${file} must be a regular file, but it is a character device`);
    await expect(loadSdModel(dir)).rejects.toThrow(refusal);
    await expect(modelHash(file)).rejects.toThrow(refusal);
  });

  it('the hash ignores a sidecar that is a FIFO instead of blocking on it', async () => {
    const facts = writeTinyModel(path.join(root, 'sidecar'), { layout: 'diffusers' });
    fifo(`${facts.weightsFile}.sha256`);
    const sha = createHash('sha256').update(readFileSync(facts.weightsFile)).digest('hex');
    expect(await modelHash(facts.weightsFile)).toBe(sha.slice(0, 10));
  });
});

describe('garbage in a file the loader reads names that file', () => {
  it.each([
    ['tokenizer/vocab.json', 'cut off', garbage, 'is not valid JSON (Unexpected end of JSON input)'],
    [
      'tokenizer/special_tokens_map.json',
      'cut off',
      garbage,
      'is not valid JSON (Unexpected end of JSON input)',
    ],
    ['vae_decoder/config.json', 'cut off', garbage, 'is not valid JSON (Unexpected end of JSON input)'],
    [
      'tokenizer/vocab.json',
      'an array',
      (p: string) => writeFileSync(p, '["a", "b"]'),
      'must be a JSON object mapping each token to a whole-number id',
    ],
    [
      'tokenizer/vocab.json',
      'without EOS',
      (p: string) => writeFileSync(p, '{"a": 0, ",</w>": 1, "<|startoftext|>": 2}'),
      'has no end-of-text token "<|endoftext|>"',
    ],
    [
      'tokenizer/merges.txt',
      'binary junk',
      (p: string) => writeFileSync(p, '#version: 0.2\ni n\n\u0000\u0001garbage\n'),
      'line 3 is not a merge of two symbols separated by a space',
    ],
  ] as const)('%s (%s)', async (name, _what, make, message) => {
    const { dir, file } = folderWith(name, make);
    await expect(loadSdModel(dir)).rejects.toThrow(new ModelLoadError(`${file} ${message}`));
  });

  it('tokenizer_config.json and model_index.json are not read, so garbage in them does not matter', async () => {
    const { dir } = folderWith('model_index.json', garbage);
    garbage(path.join(dir, 'tokenizer', 'tokenizer_config.json'));
    const model = await loadSdModel(dir);
    try {
      expect(model.tokenizer.ids.eos).toBe(49407);
    } finally {
      await model.release();
    }
  });
});

describe('MODEL_DIR holding model folders', () => {
  it('finds its one model beside a dangling symlink (it used to stop npm start with ENOENT)', () => {
    const models = path.join(root, `models${count++}`);
    writeTinyModel(path.join(models, 'tiny'), { layout: 'optimum' });
    symlinkSync(path.join(root, 'deleted-model'), path.join(models, 'gone'));
    expect(resolveModelDir(models)).toEqual({ ok: true, kind: 'onnx', dir: path.join(models, 'tiny') });
  });

  it('a folder of many models names the first five and counts the rest', () => {
    const models = path.join(root, `models${count++}`);
    mkdirSync(models);
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    for (const n of names) writeFileSync(path.join(models, `${n}.safetensors`), '');
    const found = resolveModelDir(models);
    if (found.ok) throw new Error('seven checkpoints are not one model');
    const five = names.slice(0, 5).map((n) => path.join(models, `${n}.safetensors`));
    expect(noModelReason(found, models, 'MODEL_DIR')).toBe(
      `MODEL_DIR (${models}) holds several models (${five.join(', ')} and 2 more): set MODEL_DIR to one of them.`,
    );
  });
});
