/**
 * A1111's old model hash (`sd_models.py::model_hash`, the only one before v1.0 and still what
 * 8-digit `Model hash` values in old infotexts are): the SHA-256 of the 64 KiB at offset 1 MiB,
 * first 8 hex digits. A shorter file hashes what is there, as Python's `read` returns it.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

const OFFSET = 0x100000;
const LENGTH = 0x10000;

export function oldModelHash(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buf = new Uint8Array(LENGTH);
    let done = 0;
    while (done < LENGTH) {
      const n = readSync(fd, buf, done, LENGTH - done, OFFSET + done);
      if (n === 0) break;
      done += n;
    }
    return createHash('sha256').update(buf.subarray(0, done)).digest('hex').slice(0, 8);
  } finally {
    closeSync(fd);
  }
}
