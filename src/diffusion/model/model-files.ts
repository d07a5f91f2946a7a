/**
 * Reading the files of a model folder. Each must be a regular file once symlinks are followed:
 * reading a FIFO blocks for ever and a device such as /dev/zero never ends, so anything else is
 * refused before it is opened. Every error names the file.
 */
import { readFileSync, type Stats, statSync } from 'node:fs';

export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function unreadable(file: string, err: unknown): ModelLoadError {
  const code = (err as NodeJS.ErrnoException).code;
  const what = code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? String(err)})`;
  return new ModelLoadError(`${file} ${what}`, { cause: err });
}

/** Whether `file` exists and is a regular file (symlinks followed); false if it is missing. */
export function isRegularFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Throws a ModelLoadError naming `file` unless it is a readable regular file. */
export function requireRegularFile(file: string): void {
  let stats: Stats;
  try {
    stats = statSync(file);
  } catch (err) {
    throw unreadable(file, err);
  }
  if (!stats.isFile()) {
    throw new ModelLoadError(`${file} must be a regular file, but it is ${kindOf(stats)}`);
  }
}

export function readTextFile(file: string): string {
  requireRegularFile(file);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw unreadable(file, err);
  }
}

export function readJsonFile(file: string): unknown {
  const text = readTextFile(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${file} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}
