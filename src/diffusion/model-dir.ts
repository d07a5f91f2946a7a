// Finding the Stable Diffusion ONNX folder that MODEL_DIR points at.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The part whose presence marks a folder as an ONNX Stable Diffusion export. */
const MARKER = path.join('unet', 'model.onnx');

export type ModelDirLookup =
  | { ok: true; dir: string }
  | { ok: false; reason: 'missing' | 'empty' | 'several'; candidates: string[] };

function isModelFolder(dir: string): boolean {
  return existsSync(path.join(dir, MARKER));
}

/** A folder, following symlinks; false for what cannot be looked at (a dangling link). */
function isFolder(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * MODEL_DIR may name a model folder itself or a folder holding exactly one model folder
 * (the default `models/`, into which users export or download one model).
 */
export function resolveModelDir(dir: string): ModelDirLookup {
  if (!isFolder(dir)) return { ok: false, reason: 'missing', candidates: [] };
  if (isModelFolder(dir)) return { ok: true, dir };
  const candidates = readdirSync(dir)
    .map((name) => path.join(dir, name))
    .filter((p) => isFolder(p) && isModelFolder(p))
    .sort();
  const [only] = candidates;
  if (candidates.length === 1 && only) return { ok: true, dir: only };
  return { ok: false, reason: candidates.length === 0 ? 'empty' : 'several', candidates };
}
