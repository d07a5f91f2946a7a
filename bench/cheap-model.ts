// The trivially cheap model the overhead is measured with: the tiny model's parts (a UNet of a
// few element-wise ops) with the real I/O layout at the real shapes (768-wide CLIP states, 77
// tokens, 4-channel latents, an 8× VAE), so every tensor we build, convert and copy has its real size.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSdModel, type SdModel } from '../src/diffusion/model/sd-model.ts';
import { writeTinyModel } from '../src/diffusion/model/tiny-model.ts';

export const TOKENIZER_DIR = path.resolve(import.meta.dirname, '..', 'assets', 'sd1-clip-tokenizer');

export interface CheapModel {
  dir: string;
  model: SdModel;
  dispose(): Promise<void>;
}

/** `unetWork`: an N×N MatMul chain per UNet call, for a UNet that takes real time (0 = none). */
export function writeCheapModel(dtype: 'fp32' | 'fp16', unetWork = 0): string {
  const dir = mkdtempSync(path.join(tmpdir(), `hiresbot-bench-${dtype}-`));
  writeTinyModel(dir, { layout: 'diffusers', tokenizerDir: TOKENIZER_DIR, dtype, hidden: 768, unetWork });
  return dir;
}

export async function loadCheapModel(dtype: 'fp32' | 'fp16'): Promise<CheapModel> {
  const dir = writeCheapModel(dtype);
  const model = await loadSdModel(dir);
  return {
    dir,
    model,
    async dispose() {
      await model.release();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
