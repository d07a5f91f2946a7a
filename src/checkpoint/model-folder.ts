// The ONNX folder for what MODEL_DIR / --model resolved to: the folder itself, or a checkpoint
// file imported into the cache (once; a progress bar on the given stream while it runs).
import type { ModelDirLookup } from '../diffusion/model-dir.ts';
import { importCached } from './cache.ts';
import { choosePrecision } from './precision.ts';
import { type ProgressStream, progressBar } from './progress-bar.ts';

export interface ModelFolderOptions {
  vae: string | undefined;
  dtype: 'auto' | 'fp32' | 'fp16' | undefined;
  executionProviders: readonly string[];
  cacheDir: string;
  progress?: ProgressStream;
  log?: (message: string) => void;
}

/** A setting that only a checkpoint's import reads (its VAE, its precision), as the user named it. */
export interface ImportSetting {
  name: string;
  value: string | undefined;
}

/**
 * An ONNX folder's VAE and precision were fixed when it was exported: import settings given for
 * one would be ignored without a word, so they are refused in one line (undefined: none given).
 */
export function importSettingsRefused(
  found: Extract<ModelDirLookup, { ok: true }>,
  settings: ImportSetting[],
): string | undefined {
  if (found.kind !== 'onnx') return undefined;
  const given = settings.filter((s) => s.value !== undefined).map((s) => s.name);
  if (given.length === 0) return undefined;
  return `${given.join(' and ')} ${given.length === 1 ? 'applies' : 'apply'} to .safetensors checkpoints only, and ${found.dir} is an ONNX folder (its VAE and precision were fixed when it was exported)`;
}

export async function modelFolder(
  found: Extract<ModelDirLookup, { ok: true }>,
  o: ModelFolderOptions,
): Promise<string> {
  if (found.kind === 'onnx') return found.dir;
  const dtype = choosePrecision(o.dtype, o.executionProviders);
  const started = performance.now();
  const result = await importCached(found.file, {
    cacheDir: o.cacheDir,
    dtype,
    vae: o.vae,
    onNote: o.log ?? ((m) => o.progress?.write(`${m}\n`)),
    ...(o.progress ? { onProgress: progressBar(o.progress, `importing ${found.file} (${dtype})`) } : {}),
  });
  if (result.imported) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    o.log?.(`imported ${found.file} into ${result.dir} in ${seconds} s`);
  }
  return result.dir;
}
