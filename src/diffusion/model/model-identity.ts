/**
 * What the infotext calls the loaded model, as A1111 does (`sd_models.py::CheckpointInfo`):
 * `Model` is the checkpoint's file name without extension and `Model hash` the first 10 hex digits
 * of the SHA-256 of the whole file; A1111 before 1.0 wrote an 8-digit hash of 64 KiB at 1 MiB
 * (`model_hash()`), which a pasted infotext may still carry. An external VAE adds `VAE hash` and
 * `VAE` the same way (`sd_vae.py`).
 *
 * A folder imported from a single-file checkpoint records that file in `checkpoint.json` (written by
 * src/checkpoint/); any other ONNX folder is named after itself and hashed by its UNet weights file.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ModelLoadError, readJsonFile } from './model-files.ts';
import { modelHash } from './model-hash.ts';

/** The file in an imported folder that describes the checkpoint (and VAE) it came from. */
export const CHECKPOINT_SOURCE_FILE = 'checkpoint.json';

export interface SourceFile {
  /** File name without extension: what A1111 calls it. */
  name: string;
  file: string;
  size: number;
  mtimeMs: number;
  sha256: string;
}

export interface CheckpointSource {
  /** Bumped when the importer's graphs change, so cached imports are redone. */
  importer: number;
  dtype: 'fp32' | 'fp16';
  model: SourceFile & { oldHash: string };
  vae: SourceFile | null;
  /** Every other file of the folder (path relative to it, `/`-separated) and its size when imported. */
  files?: Record<string, number>;
}

export interface ModelIdentity {
  name: string;
  /** 10 hex digits. */
  hash: string;
  /** A1111's old 8-digit hash, when the checkpoint file is known. */
  oldHash?: string;
  /** An external VAE: what A1111 writes as `VAE` and `VAE hash`. */
  vae?: { name: string; hash: string };
}

const HEX64 = /^[0-9a-f]{64}$/;

function isSourceFile(v: unknown): v is SourceFile {
  const f = v as SourceFile | null;
  return (
    typeof f === 'object' &&
    f !== null &&
    typeof f.name === 'string' &&
    typeof f.file === 'string' &&
    typeof f.size === 'number' &&
    typeof f.mtimeMs === 'number' &&
    typeof f.sha256 === 'string' &&
    HEX64.test(f.sha256)
  );
}

/** The folder's checkpoint.json, checked; undefined when the folder was not imported by us. */
export function readCheckpointSource(dir: string): CheckpointSource | undefined {
  const file = path.join(dir, CHECKPOINT_SOURCE_FILE);
  if (!existsSync(file)) return undefined;
  const json = readJsonFile(file) as Partial<CheckpointSource> | null;
  const ok =
    json !== null &&
    typeof json === 'object' &&
    typeof json.importer === 'number' &&
    (json.dtype === 'fp32' || json.dtype === 'fp16') &&
    isSourceFile(json.model) &&
    typeof json.model.oldHash === 'string' &&
    (json.vae === null || isSourceFile(json.vae));
  if (!ok) throw new ModelLoadError(`${file} is not a checkpoint description hiresbot wrote`);
  return json as CheckpointSource;
}

export async function modelIdentity(
  dir: string,
  source: CheckpointSource | undefined,
  unetWeightsFile: string,
): Promise<ModelIdentity> {
  if (!source) {
    return { name: path.basename(path.resolve(dir)), hash: await modelHash(unetWeightsFile) };
  }
  const { model, vae } = source;
  return {
    name: model.name,
    hash: model.sha256.slice(0, 10),
    oldHash: model.oldHash,
    ...(vae ? { vae: { name: vae.name, hash: vae.sha256.slice(0, 10) } } : {}),
  };
}
