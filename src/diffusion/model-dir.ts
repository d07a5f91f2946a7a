// Finding the model that MODEL_DIR (or the CLI's --model) points at: an ONNX folder, or a
// single-file checkpoint that src/checkpoint/ imports into the ONNX layout first.
import { existsSync, readdirSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';

/** The part whose presence marks a folder as an ONNX Stable Diffusion export. */
const MARKER = path.join('unet', 'model.onnx');

/**
 * Single-file checkpoints as A1111 users have them. Pickled ones are listed too, so that the
 * importer can refuse them with a reason instead of the bot saying it found no model.
 */
const CHECKPOINT = /\.(safetensors|ckpt|pt|pth)$/i;

export type ModelDirLookup =
  | { ok: true; kind: 'onnx'; dir: string }
  | { ok: true; kind: 'checkpoint'; file: string }
  | { ok: false; reason: 'missing' | 'empty' | 'several'; candidates: string[] };

function isModelFolder(dir: string): boolean {
  return existsSync(path.join(dir, MARKER));
}

/** What `p` is once symlinks are followed; undefined for what cannot be looked at (a dangling link). */
function statOf(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function kindOf(p: string): 'onnx' | 'checkpoint' | undefined {
  const stats = statOf(p);
  if (stats?.isDirectory()) return isModelFolder(p) ? 'onnx' : undefined;
  return stats?.isFile() && CHECKPOINT.test(p) ? 'checkpoint' : undefined;
}

/**
 * MODEL_DIR may name a model folder or a checkpoint file itself, or a folder holding exactly one
 * of either (the default `models/`, into which users export, download or drop one model).
 */
export function resolveModelDir(dir: string): ModelDirLookup {
  const stats = statOf(dir);
  if (stats?.isFile()) return { ok: true, kind: 'checkpoint', file: dir };
  if (!stats?.isDirectory()) return { ok: false, reason: 'missing', candidates: [] };
  if (isModelFolder(dir)) return { ok: true, kind: 'onnx', dir };
  const candidates = readdirSync(dir)
    .filter((name) => !name.startsWith('.'))
    .map((name) => path.join(dir, name))
    .filter((p) => kindOf(p) !== undefined)
    .sort();
  const [only] = candidates;
  if (candidates.length === 1 && only) {
    return kindOf(only) === 'onnx'
      ? { ok: true, kind: 'onnx', dir: only }
      : { ok: true, kind: 'checkpoint', file: only };
  }
  return { ok: false, reason: candidates.length === 0 ? 'empty' : 'several', candidates };
}

/** How many of several models a refusal names. */
const SEVERAL_NAMED = 5;

/**
 * Why `where` gives no model, in one line; `setting` is what named it (MODEL_DIR for the bot,
 * --model for the CLI), so both say the same.
 */
export function noModelReason(
  found: Extract<ModelDirLookup, { ok: false }>,
  where: string,
  setting: string,
): string {
  if (found.reason === 'several') {
    // a folder of many models (a whole /tmp, say) named in full would fill the screen
    const named = found.candidates.slice(0, SEVERAL_NAMED);
    const more = found.candidates.length - named.length;
    const list = `${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
    return `${setting} (${where}) holds several models (${list}): set ${setting} to one of them.`;
  }
  return `No Stable Diffusion model in ${where}${existsSync(where) ? '' : ' (folder not found)'}: drop an SD 1.x .safetensors checkpoint or an SD 1.5 ONNX folder (with unet/model.onnx) into ${where}/ — see README "Get a model", or set ${setting}.`;
}
