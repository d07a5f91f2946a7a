/**
 * `--prompt-file FILE` / `--negative-file FILE`: a prompt read from a file, so that a long prompt
 * never has to be on the command line (see src/engine/command-line.ts). At most `maxBytes` are
 * read, so a device such as /dev/zero ends in an error instead of filling memory.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { UsageError } from './usage-error.ts';

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

export function readPromptFile(flag: string, file: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new UsageError(`--${flag} ${file} cannot be read (${codeOf(err)})`, { cause: err });
  }
  const bytes = Buffer.alloc(maxBytes + 1);
  let n = 0;
  try {
    while (n < bytes.length) {
      const got = readSync(fd, bytes, n, bytes.length - n, null);
      if (got === 0) break;
      n += got;
    }
  } catch (err) {
    throw new UsageError(`--${flag} ${file} cannot be read (${codeOf(err)})`, { cause: err });
  } finally {
    closeSync(fd);
  }
  if (n > maxBytes) throw new UsageError(`--${flag} ${file} must be at most ${maxBytes} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n));
  } catch (err) {
    throw new UsageError(`--${flag} ${file} must be UTF-8 text`, { cause: err });
  }
  // an editor's byte-order mark and final newline are not part of the prompt (nor of its infotext)
  return text.replace(/^\uFEFF/, '').trimEnd();
}
