// A plain safetensors reader and writer for the tests, independent of src/checkpoint/: to read the
// reference file and to build the bad checkpoints the importer must refuse from the good one.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './fixtures.ts';

export const TINY_CHECKPOINT_DIR = path.join(FIXTURES, 'sd1-tiny-checkpoint');
export const TINY_CHECKPOINT = path.join(TINY_CHECKPOINT_DIR, 'model.safetensors');
export const TINY_VAE = path.join(TINY_CHECKPOINT_DIR, 'vae.safetensors');
export const TINY_REFERENCE = path.join(TINY_CHECKPOINT_DIR, 'reference.safetensors');

export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

export interface RawFile {
  metadata: Record<string, string> | undefined;
  tensors: RawTensor[];
}

export function readRaw(file: string): RawFile {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const tensors: RawTensor[] = [];
  let metadata: Record<string, string> | undefined;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    tensors.push({
      name,
      dtype,
      shape,
      data: bytes.subarray(8 + n + data_offsets[0], 8 + n + data_offsets[1]),
    });
  }
  return { metadata, tensors };
}

/** Header + data exactly as given: `header` may lie (that is what some tests want). */
export function writeHeaderAndData(file: string, header: unknown, data: Uint8Array): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([length, json, data]));
}

/** A well-formed file: tensors back to back in the given order. */
export function writeRaw(file: string, raw: RawFile): void {
  const header: Record<string, unknown> = raw.metadata ? { __metadata__: raw.metadata } : {};
  let at = 0;
  for (const t of raw.tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  writeHeaderAndData(file, header, Buffer.concat(raw.tensors.map((t) => t.data)));
}

/** A copy of the tiny checkpoint with its tensors edited (renamed, reshaped, dropped, added). */
export function rewriteTiny(
  file: string,
  edit: (tensors: RawTensor[]) => RawTensor[],
  metadata?: Record<string, string>,
): void {
  const raw = readRaw(TINY_CHECKPOINT);
  writeRaw(file, { metadata: metadata ?? raw.metadata, tensors: edit(raw.tensors) });
}

/** float16 zeros of a shape, as a tensor. */
export function zerosF16(name: string, shape: number[]): RawTensor {
  return { name, dtype: 'F16', shape, data: new Uint8Array(2 * shape.reduce((a, b) => a * b, 1)) };
}

export interface Reference {
  data: Float32Array;
  shape: number[];
}

/** A float32 tensor of reference.safetensors (int64 ones as float32 too). */
export function readReference(name: string): Reference {
  const t = readRaw(TINY_REFERENCE).tensors.find((x) => x.name === name);
  if (!t) throw new Error(`reference.safetensors has no ${name}`);
  const copy = new Uint8Array(t.data);
  if (t.dtype === 'F32') return { data: new Float32Array(copy.buffer), shape: t.shape };
  if (t.dtype === 'I64')
    return { data: Float32Array.from(new BigInt64Array(copy.buffer), Number), shape: t.shape };
  throw new Error(`${name} is ${t.dtype}`);
}
