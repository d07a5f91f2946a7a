// onnxruntime's optimised graphs saved on the first load and used on the next (CPU provider).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSdModel, type SdModel } from '../../src/diffusion/model/sd-model.ts';
import { Pipeline } from '../../src/diffusion/pipeline.ts';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { LONG_AGO_MS, makeTemporaryFolder } from '../support/leftovers.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = mkdtempSync(path.join(tmpdir(), 'hiresbot-optimized-'));
const modelDir = path.join(root, 'model');
const cache = path.join(root, 'optimized');
writeTinyModel(modelDir, { layout: 'diffusers' });
afterAll(() => rmSync(root, { recursive: true, force: true }));

const request = { ...DEFAULT_REQUEST, prompt: 'a lighthouse', seed: 3, width: 64, height: 64, steps: 4 };
async function generate(model: SdModel): Promise<Buffer> {
  try {
    return (await new Pipeline(model, { modelHash: 'x' }).generate(request)).upscaled[0]?.png as Buffer;
  } finally {
    await model.release();
  }
}

describe('the optimised-graph cache', () => {
  it('saves each part once, complete, and a second load uses it with the same images', async () => {
    const first = await generate(await loadSdModel(modelDir, { optimizedDir: cache }));
    const parts = readdirSync(cache).sort();
    expect(parts).toEqual(['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']);
    const [saved] = readdirSync(path.join(cache, 'unet'));
    expect(saved).toMatch(/^[0-9a-f]{24}$/); // no temporary folder left behind
    const unetFile = path.join(cache, 'unet', saved as string, 'model.onnx');
    expect(existsSync(unetFile)).toBe(true);

    const second = await generate(await loadSdModel(modelDir, { optimizedDir: cache }));
    expect(second.equals(first)).toBe(true);
    expect(readdirSync(path.join(cache, 'unet'))).toEqual([saved]);
  });

  it('new weights under an unchanged graph file are not served from the old saved graph', async () => {
    const a = writeTinyModel(path.join(root, 'reweighted'), { layout: 'diffusers' });
    const own = path.join(root, 'reweighted-cache');
    const before = await generate(await loadSdModel(a.dir, { optimizedDir: own }));
    // new weights in the external file beside an untouched model.onnx (fp32, little-endian)
    const bytes = readFileSync(a.weightsFile);
    const weights = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (let k = 0; k < weights.length; k++) weights[k] = (weights[k] as number) * 1.5;
    writeFileSync(a.weightsFile, bytes);
    const expected = await generate(await loadSdModel(a.dir));
    expect(expected.equals(before)).toBe(false);
    expect((await generate(await loadSdModel(a.dir, { optimizedDir: own }))).equals(expected)).toBe(true);
    // the graph saved for the old weights is gone: one saved graph per part, the new one
    expect(readdirSync(path.join(own, 'unet'))).toHaveLength(1);
  });

  it('replaces a saved graph onnxruntime cannot read, and says so', async () => {
    const [saved] = readdirSync(path.join(cache, 'unet'));
    writeFileSync(path.join(cache, 'unet', saved as string, 'model.onnx'), 'not a model');
    const warnings: string[] = [];
    const model = await loadSdModel(modelDir, {
      optimizedDir: cache,
      log: { warn: (m) => warnings.push(m), info: () => {} },
    });
    await model.release();
    expect(warnings.some((w) => w.includes('unusable') && w.includes('optimising'))).toBe(true);
    const again = readdirSync(path.join(cache, 'unet'));
    expect(again).toHaveLength(1);
    const reloaded = await loadSdModel(modelDir, { optimizedDir: cache });
    await reloaded.release();
  });

  it('removes temporary saves a killed process left (quiet for long, its pid gone or ours from before this process)', async () => {
    const unet = path.join(cache, 'unet');
    const key = '0123456789abcdef01234567';
    const left = [`${key}.tmp-999999999-dead01`, `${key}.tmp-${process.pid}-docker`];
    // the parent's save may be running (its pid is alive), however quiet
    const keptOld = [`${key}.tmp-${process.ppid}-alive1`];
    // written lately: a save of another container (PID 1 each, its pids not ours to see) or ours
    const keptFresh = [`${key}.tmp-999999999-fresh1`, `${key}.tmp-${process.pid}-mine01`];
    for (const name of [...left, ...keptOld]) makeTemporaryFolder(path.join(unet, name), LONG_AGO_MS);
    for (const name of keptFresh) makeTemporaryFolder(path.join(unet, name), 0);
    const model = await loadSdModel(modelDir, { optimizedDir: cache });
    await model.release();
    const after = readdirSync(unet);
    const kept = [...keptOld, ...keptFresh];
    for (const name of left) expect(after).not.toContain(name);
    for (const name of kept) expect(after).toContain(name);
    for (const name of kept) rmSync(path.join(unet, name), { recursive: true });
  });
});
