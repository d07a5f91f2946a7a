// A checkpoint named by MODEL_DIR / --model is imported once into the cache and reused until the
// file changes; the hashes the infotext shows are A1111's (values from Python's hashlib).
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheFolderName, importCached } from '../../src/checkpoint/cache.ts';
import { oldModelHash } from '../../src/checkpoint/old-hash.ts';
import { defaultPrecision } from '../../src/checkpoint/precision.ts';
import { progressBar } from '../../src/checkpoint/progress-bar.ts';
import { modelIdentity, readCheckpointSource } from '../../src/diffusion/model/model-identity.ts';
import { resolveModelDir } from '../../src/diffusion/model-dir.ts';
import { LONG_AGO_MS, makeTemporaryFolder } from '../support/leftovers.ts';
import { rewriteTiny, TINY_CHECKPOINT, TINY_VAE } from '../support/safetensors.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-ckpt-cache-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('A1111 hashes of the tiny checkpoint', () => {
  it('Model hash, old hash and VAE hash are what hashlib gives', async () => {
    const cacheDir = path.join(work, 'hashes');
    const { dir } = await importCached(TINY_CHECKPOINT, { cacheDir, dtype: 'fp32', vae: TINY_VAE });
    const source = readCheckpointSource(dir);
    // hashlib.sha256(whole file)[:10]; of f.seek(0x100000), f.read(0x10000) [:8]
    expect(await modelIdentity(dir, source, 'unused')).toEqual({
      name: 'model',
      hash: 'cc9fbb7dc1',
      oldHash: '95abe523',
      vae: { name: 'vae', hash: '04b9f06b7d' },
    });
  });

  it('the old hash of a file shorter than 1 MiB is that of nothing, as Python reads it', () => {
    const file = path.join(work, 'short.bin');
    writeFileSync(file, Buffer.alloc(1000, 7));
    expect(oldModelHash(file)).toBe('e3b0c442'); // sha256(b'')
  });
});

describe('the import cache', () => {
  const cacheDir = path.join(work, 'cache');
  const file = path.join(work, 'mine.safetensors');

  it('imports once, reuses it, and keeps a touched but equal file', async () => {
    copyFileSync(TINY_CHECKPOINT, file);
    const first = await importCached(file, { cacheDir, dtype: 'fp32' });
    expect(first.imported).toBe(true);
    expect(path.basename(first.dir)).toBe(cacheFolderName(file, 'fp32'));
    expect((await importCached(file, { cacheDir, dtype: 'fp32' })).imported).toBe(false);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(await importCached(file, { cacheDir, dtype: 'fp32' })).toEqual({
      dir: first.dir,
      imported: false,
    });
    // and the new mtime is recorded, so the next start does not hash again
    expect(readCheckpointSource(first.dir)?.model.mtimeMs).toBe(statSync(file).mtimeMs);
  });

  it('imports again when the file changes, swapping the folder in whole', async () => {
    rewriteTiny(file, (tensors) => tensors.filter((t) => t.name !== 'betas'));
    const again = await importCached(file, { cacheDir, dtype: 'fp32' });
    expect(again.imported).toBe(true);
    expect(readdirSync(cacheDir).sort()).toEqual([path.basename(again.dir)]);
  });

  it('keeps other precisions and VAEs in folders of their own', async () => {
    const fp16 = await importCached(file, { cacheDir, dtype: 'fp16' });
    const vae = await importCached(file, { cacheDir, dtype: 'fp32', vae: TINY_VAE });
    expect(new Set([fp16.dir, vae.dir, path.join(cacheDir, cacheFolderName(file, 'fp32'))]).size).toBe(3);
    expect(path.basename(vae.dir)).toMatch(/^mine-[0-9a-f]{8}-fp32\+vae$/);
  });

  it('imports again, saying so once, when a file of the cached import was cut short or deleted', async () => {
    const notes: string[] = [];
    const o = { cacheDir, dtype: 'fp32' as const, onNote: (m: string) => notes.push(m) };
    const dir = path.join(cacheDir, cacheFolderName(file, 'fp32'));
    const weights = path.join(dir, 'unet', 'model.onnx_data');
    const size = statSync(weights).size;
    truncateSync(weights, 100);
    expect((await importCached(file, o)).imported).toBe(true);
    expect(statSync(weights).size).toBe(size);
    expect((await importCached(file, o)).imported).toBe(false);
    rmSync(path.join(dir, 'vae_decoder', 'model.onnx'));
    expect((await importCached(file, o)).imported).toBe(true);
    expect(statSync(path.join(dir, 'vae_decoder', 'model.onnx')).isFile()).toBe(true);
    const again = 'importing it again';
    expect(notes).toEqual([
      `the cached import ${dir} is damaged (unet/model.onnx_data has 100 bytes, not the ${size} it was written with): ${again}`,
      `the cached import ${dir} is damaged (vae_decoder/model.onnx is missing): ${again}`,
    ]);
  });

  it('removes what an import killed half-way left behind, but not a running one’s', async () => {
    const dead = path.join(cacheDir, '.mine.importing-999999999-abc');
    // under Docker the bot is always PID 1: the last container's leftovers carry our own pid
    const ourPidBefore = path.join(cacheDir, `.mine.importing-${process.pid}-0b1d`);
    const oldSwap = path.join(cacheDir, `.mine.old-${process.pid}-0b1e`);
    // a pid alive here may be writing it, however long it has been quiet
    const alive = path.join(cacheDir, `.mine.importing-${process.ppid}-def`);
    for (const dir of [dead, ourPidBefore, oldSwap, alive]) makeTemporaryFolder(dir, LONG_AGO_MS);
    // written lately: another container's live import (each is PID 1, and its pid is not ours to see)
    const freshDead = path.join(cacheDir, '.mine.importing-999999999-f1e5');
    const ours = path.join(cacheDir, `.mine.importing-${process.pid}-f00d`);
    for (const dir of [freshDead, ours]) makeTemporaryFolder(dir, 0);
    // a long part being written: its top folder is old, the file being written is not
    const writing = path.join(cacheDir, '.mine.importing-999999999-b0d1');
    const weights = makeTemporaryFolder(writing, LONG_AGO_MS);
    utimesSync(weights, new Date(), new Date());
    await importCached(file, { cacheDir, dtype: 'fp32' });
    const left = readdirSync(cacheDir);
    for (const gone of [dead, ourPidBefore, oldSwap]) expect(left).not.toContain(path.basename(gone));
    for (const kept of [alive, freshDead, ours, writing]) expect(left).toContain(path.basename(kept));
    for (const kept of [alive, freshDead, ours, writing]) rmSync(kept, { recursive: true });
  });
});

describe('a checkpoint with a long name', () => {
  it('imports into a cache folder whose name and temporary names fit (235 characters: ENAMETOOLONG before)', async () => {
    const cacheDir = path.join(work, 'long-names');
    const file = path.join(work, `${'n'.repeat(235)}.safetensors`);
    copyFileSync(TINY_CHECKPOINT, file);
    const { dir, imported } = await importCached(file, { cacheDir, dtype: 'fp32', vae: TINY_VAE });
    expect(imported).toBe(true);
    expect(path.basename(dir)).toMatch(/^n{64}-[0-9a-f]{8}-fp32\+vae$/);
    expect(readdirSync(cacheDir)).toEqual([path.basename(dir)]);
    expect(readCheckpointSource(dir)?.model.name).toBe('n'.repeat(235));
  });
});

describe('MODEL_DIR and --model', () => {
  it('may name a checkpoint file, or a folder holding just one', () => {
    const models = path.join(work, 'models');
    mkdirSync(path.join(models, 'VAE'), { recursive: true });
    const ckpt = path.join(models, 'baka.safetensors');
    copyFileSync(TINY_CHECKPOINT, ckpt);
    expect(resolveModelDir(ckpt)).toEqual({ ok: true, kind: 'checkpoint', file: ckpt });
    expect(resolveModelDir(models)).toEqual({ ok: true, kind: 'checkpoint', file: ckpt });
    const other = path.join(models, 'old.ckpt');
    writeFileSync(other, 'x');
    expect(resolveModelDir(models)).toEqual({ ok: false, reason: 'several', candidates: [ckpt, other] });
  });

  it('imports in fp16 for cuda, tensorrt and dml, and fp32 for the CPU and webgpu by default', () => {
    expect(defaultPrecision(['cuda', 'cpu'])).toBe('fp16');
    expect(defaultPrecision(['tensorrt'])).toBe('fp16');
    expect(defaultPrecision(['dml'])).toBe('fp16');
    expect(defaultPrecision(['cpu'])).toBe('fp32');
    // webgpu's fp16 kernels were 2.9e-2 off float32 on an H100 (README "Benchmarks"): fp32
    expect(defaultPrecision(['webgpu', 'cpu'])).toBe('fp32');
    expect(defaultPrecision(['coreml', 'cpu'])).toBe('fp32');
  });
});

describe('the progress bar', () => {
  it('redraws one line on a terminal and writes a line per 10 % elsewhere', () => {
    const lines: string[] = [];
    const piped = progressBar({ isTTY: false, write: (t) => lines.push(t) }, 'importing x');
    for (let done = 0; done <= 100; done += 5) piped({ stage: 'unet', done, total: 100 });
    expect(lines).toHaveLength(11);
    expect(lines[10]).toBe('importing x: 100% (UNet)\n');
    const drawn: string[] = [];
    const tty = progressBar({ isTTY: true, write: (t) => drawn.push(t) }, 'importing x');
    tty({ stage: 'hashing', done: 50, total: 100 });
    tty({ stage: 'vae_encoder', done: 100, total: 100 });
    expect(drawn[0]).toBe(`\rimporting x [${'#'.repeat(15)}${'-'.repeat(15)}]  50% hashing     `);
    expect(drawn.at(-1)).toBe('\n');
  });
});
