/**
 * A safetensors file (https://github.com/huggingface/safetensors, format as its Rust reader
 * `safetensors/src/tensor.rs` checks it): an 8-byte little-endian header length N, N bytes of
 * JSON `{name: {dtype, shape, data_offsets}, __metadata__?: {string: string}}`, then the tensor
 * bytes. The file is data, never code: the header is read with the same bounds the reference
 * reader enforces (header size, known dtypes, shape × dtype size = byte range, ranges back to back
 * and ending exactly at the end of the file), anything else is refused naming the tensor, and
 * tensors are read one at a time by position so a 2 GB file never sits in memory.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { CheckpointError } from './checkpoint-error.ts';

/** Bytes per element of every dtype the reference reader knows (sub-byte float kinds excluded). */
export const DTYPE_SIZE = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_SIZE;

export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /** Absolute position of the first byte in the file. */
  offset: number;
  byteLength: number;
}

/**
 * Bounds far above any real checkpoint (an SD 1.5 header is about 100 KB for some 1,200 tensors;
 * SDXL's about 2,500), checked before the header is parsed: the reference reader's 100 MB let a
 * 27 MB header of a million tiny tensors take 861 MB of memory to parse. 16 MiB leaves room for
 * the largest `__metadata__` (training tags).
 */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
export const MAX_TENSORS = 20_000;

/** The reference reader's own limit (`MAX_HEADER_SIZE`): past it, not a safetensors file at all. */
const REFERENCE_MAX_HEADER_BYTES = 100_000_000;

/**
 * Values the header may hold in all (tensors, their shapes and offsets, `__metadata__` entries):
 * 20,000 tensors take about 140,000. A header of 16 MiB of tiny `__metadata__` entries, which
 * the tensor count does not see, took 650 MB of memory to parse.
 */
export const MAX_HEADER_VALUES = 10 * MAX_TENSORS;

/** How many values the header text holds, about: its commas outside strings, plus one. */
function valuesIn(text: string): number {
  let count = 1;
  let inString = false;
  for (let at = 0; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (inString) {
      if (c === 0x5c)
        at++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x2c) count++;
  }
  return count;
}

/** How many tensor entries the header text holds, at most: its `"data_offsets"` keys. */
function entriesIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf('"data_offsets"'); at !== -1; at = text.indexOf('"data_offsets"', at + 1))
    count++;
  return count;
}

/** The first bytes of a pickle (protocol 2+) or of torch's zip container: `.ckpt`/`.pt` content. */
function looksPickled(head: Uint8Array): boolean {
  const zip = head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  const pickle = head[0] === 0x80 && (head[1] ?? 0) >= 2 && (head[1] ?? 0) <= 5;
  return zip || pickle;
}

export function pickleRefusal(file: string): CheckpointError {
  return new CheckpointError(
    `${file} is a pickled PyTorch checkpoint (.ckpt/.pt): loading one can run any code it carries, so hiresbot does not read it; use the model's .safetensors file (most model pages offer one) or convert it to .safetensors`,
  );
}

function notSafetensors(file: string, err: unknown): CheckpointError {
  return new CheckpointError(`${file} is not a safetensors file (${(err as Error).message})`, { cause: err });
}

function readFully(fd: number, length: number, position: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

function isSafeCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

interface RawEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  start: number;
  end: number;
}

function parseEntry(file: string, name: string, info: unknown): RawEntry {
  const where = `${file}: tensor "${name}"`;
  if (typeof info !== 'object' || info === null) throw new CheckpointError(`${where} is not an object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
    throw new CheckpointError(`${where} has an unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isSafeCount)) {
    throw new CheckpointError(`${where} has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSafeCount)) {
    throw new CheckpointError(`${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [start, end] = offsets as [number, number];
  let bytes = DTYPE_SIZE[dtype as Dtype] as number;
  for (const d of shape as number[]) {
    bytes *= d;
    if (!Number.isSafeInteger(bytes))
      throw new CheckpointError(`${where}: shape ${JSON.stringify(shape)} is too large`);
  }
  if (end < start || end - start !== bytes) {
    throw new CheckpointError(
      `${where}: shape [${shape.join(', ')}] of ${dtype} takes ${bytes} bytes but data_offsets [${start}, ${end}] hold ${end - start}`,
    );
  }
  return { name, dtype: dtype as Dtype, shape: shape as number[], start, end };
}

export class SafetensorsFile {
  private fd: number | undefined;

  private constructor(
    readonly file: string,
    fd: number,
    readonly size: number,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
  ) {
    this.fd = fd;
  }

  /** Opens and checks the header; throws a CheckpointError naming the file (and tensor) if bad. */
  static open(file: string): SafetensorsFile {
    if (/\.(ckpt|pt|pth|bin)$/i.test(file)) throw pickleRefusal(file);
    const cannotRead = (err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      return new CheckpointError(`${file} ${code === 'ENOENT' ? 'is missing' : `cannot be read (${code})`}`, {
        cause: err,
      });
    };
    // a FIFO or device blocks in open() until someone writes: look before opening, and open
    // without blocking in case the path is swapped in between (the fstat below refuses it then)
    try {
      if (!statSync(file).isFile()) throw new CheckpointError(`${file} is not a regular file`);
    } catch (err) {
      throw err instanceof CheckpointError ? err : cannotRead(err);
    }
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw cannotRead(err);
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) throw new CheckpointError(`${file} is not a regular file`);
      const parsed = SafetensorsFile.parseHeader(file, fd, stats.size);
      return new SafetensorsFile(file, fd, stats.size, parsed.metadata, parsed.tensors);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  private static parseHeader(file: string, fd: number, size: number) {
    const head = readFully(fd, 8, 0);
    if (head.length < 8) throw new CheckpointError(`${file} is too short to be a safetensors file`);
    if (looksPickled(head)) throw pickleRefusal(file);
    const headerBytes = new DataView(head.buffer).getBigUint64(0, true);
    if (headerBytes > BigInt(REFERENCE_MAX_HEADER_BYTES)) {
      throw new CheckpointError(`${file} is not a safetensors file (header length ${headerBytes} bytes)`);
    }
    if (headerBytes > BigInt(MAX_HEADER_BYTES)) {
      throw new CheckpointError(
        `${file}: its header is ${headerBytes} bytes, more than the ${MAX_HEADER_BYTES} any real checkpoint needs (an SD 1.5 header is about 100 KB): not read`,
      );
    }
    const n = Number(headerBytes);
    if (8 + n > size) {
      throw new CheckpointError(
        `${file} is truncated: its header needs ${n} bytes, the file has ${size - 8}`,
      );
    }
    let text: string;
    let json: unknown;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(readFully(fd, n, 8));
      if (!text.startsWith('{')) throw new Error('the header does not start with "{"');
    } catch (err) {
      throw notSafetensors(file, err);
    }
    const entries = entriesIn(text);
    if (entries > MAX_TENSORS) {
      throw new CheckpointError(
        `${file}: its header lists ${entries} tensors, more than the ${MAX_TENSORS} any real checkpoint has (SD 1.5 has about 1,200): not read`,
      );
    }
    const values = valuesIn(text);
    if (values > MAX_HEADER_VALUES) {
      throw new CheckpointError(
        `${file}: its header holds ${values} values, more than the ${MAX_HEADER_VALUES} any real checkpoint needs (SD 1.5 about 6,000): not read`,
      );
    }
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw notSafetensors(file, err);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new CheckpointError(`${file} is not a safetensors file (its header is not a JSON object)`);
    }
    const metadata: Record<string, string> = {};
    const raw: RawEntry[] = [];
    for (const [key, info] of Object.entries(json)) {
      if (key === '__metadata__') {
        if (typeof info !== 'object' || info === null || Array.isArray(info)) {
          throw new CheckpointError(`${file}: __metadata__ is not a map of strings`);
        }
        for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
          if (typeof v !== 'string')
            throw new CheckpointError(`${file}: __metadata__ "${k}" is not a string`);
          metadata[k] = v;
        }
        continue;
      }
      raw.push(parseEntry(file, key, info));
    }
    // back to back from 0, as the reference reader demands: no overlap, no gap, nothing after
    raw.sort((a, b) => a.start - b.start || a.end - b.end);
    const dataBytes = size - 8 - n;
    let at = 0;
    let previous: RawEntry | undefined;
    for (const e of raw) {
      const where = `${file}: tensor "${e.name}"`;
      if (e.start < at) {
        throw new CheckpointError(
          `${where}: data_offsets [${e.start}, ${e.end}] overlap tensor "${previous?.name}" (which ends at ${at})`,
        );
      }
      if (e.start > at) {
        throw new CheckpointError(
          `${where}: data_offsets [${e.start}, ${e.end}] leave ${e.start - at} bytes unaccounted for before it`,
        );
      }
      if (e.end > dataBytes) {
        throw new CheckpointError(
          `${where} ends at byte ${e.end} of the tensor data but the file holds only ${dataBytes}: the file is truncated or corrupt`,
        );
      }
      at = e.end;
      previous = e;
    }
    if (at !== dataBytes) {
      throw new CheckpointError(
        `${file} has ${dataBytes - at} bytes after its last tensor that its header does not describe: the file is corrupt`,
      );
    }
    const tensors = new Map<string, TensorEntry>();
    for (const e of raw) {
      tensors.set(e.name, {
        name: e.name,
        dtype: e.dtype,
        shape: e.shape,
        offset: 8 + n + e.start,
        byteLength: e.end - e.start,
      });
    }
    return { metadata, tensors };
  }

  /** The tensor's bytes, read at its position (little-endian, as stored). */
  read(entry: TensorEntry): Uint8Array {
    if (this.fd === undefined) throw new Error(`${this.file} is closed`);
    const bytes = readFully(this.fd, entry.byteLength, entry.offset);
    if (bytes.length !== entry.byteLength) {
      throw new CheckpointError(
        `${this.file}: tensor "${entry.name}" could not be read in full (the file was truncated while importing)`,
      );
    }
    return bytes;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
