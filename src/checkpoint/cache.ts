/**
 * A checkpoint imported once and kept: `<cacheDir>/<name>-<path id>-<dtype>[+<vae name>]/`. It is
 * reused while checkpoint.json still describes the same file (size and mtime, or failing that the
 * same SHA-256: a copied or touched file is not imported again), the same VAE, precision and
 * importer version; otherwise it is imported again beside the old one and swapped in. Imports that
 * a killed process left half-way are removed the next time.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { leftBehind } from '../diffusion/model/left-behind.ts';
import { sha256File } from '../diffusion/model/model-hash.ts';
import {
  CHECKPOINT_SOURCE_FILE,
  type CheckpointSource,
  readCheckpointSource,
  type SourceFile,
} from '../diffusion/model/model-identity.ts';
import { kernelFolderRefusal } from '../kernel-folder.ts';
import { makeFolder } from '../make-folder.ts';
import { writeRefusal } from '../write-error.ts';
import { CheckpointError } from './checkpoint-error.ts';
import { IMPORTER_VERSION, type ImportProgress, importCheckpoint, removeQuietly } from './import.ts';
import type { Precision } from './onnx-net.ts';

export interface CachedImportOptions {
  cacheDir: string;
  dtype: Precision;
  vae?: string | undefined;
  onProgress?: (p: ImportProgress) => void;
  /** Told once why a cached import is done again when it is found damaged. */
  onNote?: (message: string) => void;
}

export interface CachedImport {
  dir: string;
  /** False when a cached import was reused. */
  imported: boolean;
}

const nameOf = (file: string) => path.basename(file, path.extname(file));

/** A folder name for this file, VAE and precision (a short hash keeps same-named files apart). */
export function cacheFolderName(file: string, dtype: Precision, vae?: string): string {
  const id = createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 8);
  // cut so that `.<name>.importing-<pid>-<time>` and the importer's own temporary name beside it
  // stay under the usual 255-byte limit (the hash keeps cut names apart)
  const safe = (s: string) => s.replace(/[^\w.-]+/g, '_').slice(0, 64);
  return `${safe(nameOf(file))}-${id}-${dtype}${vae ? `+${safe(nameOf(vae))}` : ''}`;
}

function sameStat(recorded: SourceFile, file: string): boolean {
  const { size, mtimeMs } = statSync(file);
  return recorded.file === path.resolve(file) && recorded.size === size && recorded.mtimeMs === mtimeMs;
}

function readSource(dir: string): CheckpointSource | undefined {
  try {
    return existsSync(dir) ? readCheckpointSource(dir) : undefined;
  } catch {
    return undefined; // unreadable: import again
  }
}

/** How a cached folder compares: 'unlisted' fits but, made before the list, cannot be checked. */
type Fit = 'fits' | 'unlisted' | 'no';

/**
 * What is wrong with the files of a cached import (a truncated or deleted weights file would fail
 * at every load with onnxruntime's own message): undefined when each has the size it was written
 * with.
 */
function damage(dir: string, files: Record<string, number>): string | undefined {
  for (const [file, size] of Object.entries(files)) {
    const found = statSync(path.join(dir, file), { throwIfNoEntry: false });
    if (!found?.isFile()) return `${file} is missing`;
    if (found.size !== size) return `${file} has ${found.size} bytes, not the ${size} it was written with`;
  }
  return undefined;
}

/**
 * Whether the cached folder still fits; refreshes a touched file's recorded mtime if its bytes
 * match. `note` is told why a damaged folder does not.
 */
async function fitOf(
  dir: string,
  file: string,
  o: CachedImportOptions,
  note?: (message: string) => void,
): Promise<Fit> {
  const source = readSource(dir);
  if (!source || source.importer !== IMPORTER_VERSION || source.dtype !== o.dtype) return 'no';
  if (Boolean(source.vae) !== Boolean(o.vae)) return 'no';
  const damaged = source.files && damage(dir, source.files);
  if (damaged) {
    note?.(`the cached import ${dir} is damaged (${damaged}): importing it again`);
    return 'no';
  }
  const pairs: [SourceFile, string][] = [[source.model, file]];
  if (source.vae && o.vae) pairs.push([source.vae, o.vae]);
  let touched = false;
  for (const [recorded, current] of pairs) {
    if (sameStat(recorded, current)) continue;
    if ((await sha256File(current)) !== recorded.sha256) return 'no';
    const { size, mtimeMs } = statSync(current);
    Object.assign(recorded, { file: path.resolve(current), size, mtimeMs });
    touched = true;
  }
  // the whole file as read (the structure too), with the new size and mtime: it only spares the
  // next start a hash, so a cache that cannot be written (read-only, full) is used as it is
  if (touched) {
    try {
      writeFileSync(path.join(dir, CHECKPOINT_SOURCE_FILE), `${JSON.stringify(source, null, 2)}\n`);
    } catch {
      // hashed again next time
    }
  }
  return source.files ? 'fits' : 'unlisted';
}

/** Removes `.<name>.importing-<pid>-…` and `.old-` folders that a killed process left (see left-behind.ts). */
function removeAbandoned(cacheDir: string): void {
  for (const entry of readdirSync(cacheDir)) {
    const m = /^\..+\.(?:importing|old)-(\d+)-[0-9a-f]+$/.exec(entry);
    const dir = path.join(cacheDir, entry);
    if (!m || !leftBehind(dir, Number(m[1]))) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a read-only cache: a leftover costs only its disk space, and the imports beside it still serve
    }
  }
}

export async function importCached(file: string, o: CachedImportOptions): Promise<CachedImport> {
  const kernel = kernelFolderRefusal(o.cacheDir, 'MODEL_CACHE_DIR');
  if (kernel) throw new CheckpointError(kernel);
  try {
    makeFolder(o.cacheDir);
  } catch (err) {
    const refusal = writeRefusal(err, o.cacheDir, 'MODEL_CACHE_DIR');
    throw refusal ? new CheckpointError(refusal, { cause: err }) : err;
  }
  removeAbandoned(o.cacheDir);
  const name = cacheFolderName(file, o.dtype, o.vae);
  const dir = path.join(o.cacheDir, name);
  const fit = await fitOf(dir, file, o, o.onNote);
  if (fit === 'fits') return { dir, imported: false };
  // imported again to list its files; if that cannot be done (a read-only or full cache), it
  // served until now and still does
  if (fit === 'unlisted') o.onNote?.(`the cached import ${dir} has no list of its files: importing it again`);

  const suffix = `${process.pid}-${Date.now().toString(16)}`;
  const fresh = path.join(o.cacheDir, `.${name}.importing-${suffix}`);
  const old = path.join(o.cacheDir, `.${name}.old-${suffix}`);
  try {
    await importCheckpoint(file, fresh, {
      dtype: o.dtype,
      vae: o.vae,
      outSetting: 'MODEL_CACHE_DIR',
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(fresh, dir);
  } catch (err) {
    // another process may have put a fitting import in place while this one ran
    const now = await fitOf(dir, file, o);
    if (existsSync(fresh) && now === 'fits') return { dir, imported: false };
    // the temporary name means nothing to the user: the folder it would have become does
    const named =
      err instanceof CheckpointError && err.message.includes(fresh)
        ? new CheckpointError(err.message.replaceAll(fresh, dir), { cause: err.cause })
        : err;
    if (fit === 'unlisted' && now === 'unlisted') {
      o.onNote?.(`could not import ${dir} again (${(named as Error).message}): using it as it is`);
      return { dir, imported: false };
    }
    throw named;
  } finally {
    removeQuietly(fresh);
    removeQuietly(old);
  }
  return { dir, imported: true };
}
