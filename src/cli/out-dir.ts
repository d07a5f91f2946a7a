/**
 * The CLI's output folder: checked before any work (a bad `--out` used to surface only after the
 * whole generation), and written file by file through a temporary name in the same folder, so a
 * full disk leaves the previous image or none, never a truncated PNG that looks complete.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { kernelFolderRefusal } from '../kernel-folder.ts';
import { makeFolder } from '../make-folder.ts';
import { writeRefusal } from '../write-error.ts';
import { UsageError } from './usage-error.ts';

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
}

/** Creates `dir` if need be and proves it writable by writing and removing a probe file. */
export function prepareOutDir(dir: string): void {
  const kernel = kernelFolderRefusal(dir, '--out');
  if (kernel) throw new UsageError(kernel);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`--out ${dir} must be a folder`);
  try {
    makeFolder(dir);
  } catch (err) {
    throw new UsageError(`--out ${dir} cannot be created (${codeOf(err)})`, { cause: err });
  }
  const probe = tempNameFor(path.join(dir, 'probe'));
  try {
    writeFileDurably(probe, Buffer.alloc(0));
  } catch (err) {
    throw new UsageError(`--out ${dir} is not writable (${codeOf(err)})`, { cause: err });
  } finally {
    rmSync(probe, { force: true });
  }
}

function writeFileDurably(file: string, data: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces every file with its data, or throws and leaves them all as they were: each is written
 * whole under a temporary name first, and only then are they renamed into place, so a full disk
 * part-way never leaves a new base image beside the last run's upscaled one.
 */
export function writeFilesReplacing(files: readonly (readonly [string, Uint8Array])[]): void {
  const written: string[] = [];
  for (const [file, data] of files) {
    const temp = tempNameFor(file);
    try {
      writeFileDurably(temp, data);
      written.push(temp);
    } catch (err) {
      for (const t of [...written, temp]) rmSync(t, { force: true });
      throw new Error(writeRefusal(err, file, '--out') ?? `cannot write ${file} (${codeOf(err)})`, {
        cause: err,
      });
    }
  }
  // a rename within one folder does not fail for want of space, only onto something that is not
  // a file: looked for before the first, so that none is renamed when one would fail
  const blocked = files.find(([file]) => existsSync(file) && !lstatSync(file).isFile());
  if (blocked) {
    for (const t of written) rmSync(t, { force: true });
    throw new Error(`cannot write ${blocked[0]} (EISDIR: something that is not a file is there)`);
  }
  for (const [i, [file]] of files.entries()) renameSync(written[i] as string, file);
}
