/**
 * A1111's "Model hash": the first 10 hex digits of the SHA-256 of the weights file
 * (`hashes.py::calculate_sha256`). Hashing a 2–4 GB UNet takes seconds, so the result is kept
 * in memory and, when the folder is writable, in a `<file>.sha256` sidecar keyed by size and mtime.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isRegularFile, requireRegularFile } from './model-files.ts';

const memo = new Map<string, string>();

interface Sidecar {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** The SHA-256 of a whole file, read in 4 MiB chunks; `onBytes` hears of each chunk. */
export async function sha256File(file: string, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return hash.digest('hex');
}

/** The cached SHA-256 if the sidecar exists and still describes this size and mtime. */
function readSidecar(sidecar: string, size: number, mtimeMs: number): string | undefined {
  try {
    const cached = JSON.parse(readFileSync(sidecar, 'utf8')) as Sidecar;
    if (cached.size === size && cached.mtimeMs === mtimeMs && /^[0-9a-f]{64}$/.test(cached.sha256)) {
      return cached.sha256;
    }
  } catch {
    // no sidecar yet, or garbage in it: hash again
  }
  return undefined;
}

export async function modelHash(file: string): Promise<string> {
  // a device (a symlink to /dev/zero) would be hashed for ever, a FIFO would block
  requireRegularFile(file);
  const { size, mtimeMs } = statSync(file);
  const key = `${file}:${size}:${mtimeMs}`;
  const known = memo.get(key);
  if (known) return known;
  const sidecar = `${file}.sha256`;
  // the sidecar is only a cache: one that is not a regular file is neither read nor written
  const usable = !existsSync(sidecar) || isRegularFile(sidecar);
  let sha = usable ? readSidecar(sidecar, size, mtimeMs) : undefined;
  if (!sha) {
    sha = await sha256File(file);
    try {
      if (usable) writeFileSync(sidecar, JSON.stringify({ size, mtimeMs, sha256: sha } satisfies Sidecar));
    } catch {
      // read-only model folder: the in-memory copy is enough
    }
  }
  const short = sha.slice(0, 10);
  memo.set(key, short);
  return short;
}
