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
    ...(o.progress ? { onProgress: progressBar(o.progress, `importing ${found.file} (${dtype})`) } : {}),
  });
  if (result.imported) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    o.log?.(`imported ${found.file} into ${result.dir} in ${seconds} s`);
  }
  return result.dir;
}
