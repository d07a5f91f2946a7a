/**
 * `mkdir -p` with the file system's own reason: Node 20's recursive mkdir reports ENOENT where a
 * read-only mount refused (EROFS), so a full-disk style message (write-error.ts) never matched and
 * the user read "no such file or directory" for a folder being made.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export function makeFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // the first missing folder, made alone, fails with the real code (or is made, if raced)
    let first = path.resolve(dir);
    while (!existsSync(path.dirname(first)) && path.dirname(first) !== first) first = path.dirname(first);
    if (!existsSync(first)) mkdirSync(first);
    mkdirSync(dir, { recursive: true });
  }
}
