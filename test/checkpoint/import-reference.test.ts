// The imported tiny checkpoint, part by part, against reference outputs computed from the same
// fp16 weights in fp32 by the code A1111 v1.10 runs: ldm's UNetModel, Decoder and Encoder
// (Stability-AI/stablediffusion @cf1d67a) and transformers' CLIPTextModel, by
// test/fixtures/sd1-tiny-checkpoint/make_ckpt.py (see its README). Element by element, within
// 2e-3 of the largest reference value in fp32.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCheckpoint } from '../../src/checkpoint/import.ts';
import { floatsOf, floatTensor } from '../../src/diffusion/model/float-tensor.ts';
import { loadSdModel, type SdModel } from '../../src/diffusion/model/sd-model.ts';
import { assertClose } from '../support/assert-close.ts';
import {
  readRaw,
  readReference,
  rewriteTiny,
  TINY_CHECKPOINT,
  TINY_VAE,
  writeRaw,
} from '../support/safetensors.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-import-ref-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** fp32: the bound. */
const FP32_TOLERANCE = 2e-3;
/**
 * fp16 computes with 11 significant bits (≈ 5e-4 relative per rounding) through up to ~20 layers;
 * the tiny model's largest error is about 1e-3 of the largest value, so 1e-2 leaves room for
 * other onnxruntime builds without hiding a wrong layer (which is off by far more).
 */
const FP16_TOLERANCE = 1e-2;

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function expectClose(actual: Float32Array, name: string, tolerance: number, take?: number): void {
  const ref = readReference(name).data;
  assertClose(take === undefined ? actual : actual.subarray(0, take), ref, { atol: tolerance * maxAbs(ref) });
}

/** How many MultiHeadAttention nodes a part's graph holds (their names: n_MultiHeadAttention_…). */
function mhaNodes(model: SdModel, part: string): number {
  return (
    readFileSync(path.join(model.dir, part, 'model.onnx'))
      .toString('latin1')
      .split('n_MultiHeadAttention_').length - 1
  );
}

async function clipOut(model: SdModel): Promise<Float32Array> {
  const ids = readReference('clip_input_ids').data;
  const te = model.textEncoder;
  const input =
    te.idsType === 'int32'
      ? new ort.Tensor('int32', Int32Array.from(ids), [2, 77])
      : new ort.Tensor(
          'int64',
          BigInt64Array.from(ids, (v) => BigInt(v)),
          [2, 77],
        );
  return floatsOf((await te.session.run({ input_ids: input }))[te.output] as ort.Tensor);
}

async function unetOut(model: SdModel, t: 't961' | 't1'): Promise<Float32Array> {
  const u = model.unet;
  const x = readReference('unet_sample');
  const c = readReference('unet_context');
  const ts = readReference(`unet_${t}_timestep`);
  const feeds = {
    sample: floatTensor(u.sampleType, x.data, x.shape),
    timestep: new ort.Tensor('float32', ts.data, [1]),
    encoder_hidden_states: floatTensor(u.contextType, c.data, c.shape),
  };
  return floatsOf((await u.session.run(feeds))[u.output] as ort.Tensor);
}

async function decoderOut(model: SdModel): Promise<Float32Array> {
  const z = readReference('vae_latent_sample');
  const d = model.vaeDecoder;
  return floatsOf(
    (await d.session.run({ latent_sample: floatTensor(d.type, z.data, z.shape) }))[d.output] as ort.Tensor,
  );
}

async function encoderMean(model: SdModel): Promise<Float32Array> {
  const img = readReference('vae_encoder_image');
  const e = model.vaeEncoder;
  if (!e) throw new Error('no VAE encoder');
  return floatsOf(
    (await e.session.run({ sample: floatTensor(e.type, img.data, img.shape) }))[e.output] as ort.Tensor,
  );
}

/** 4 latent channels of 16 × 16: the mean is the first half of latent_parameters. */
const MEAN_VALUES = 4 * 16 * 16;

async function imported(name: string, file: string, options: Parameters<typeof importCheckpoint>[2]) {
  const dir = path.join(work, name);
  await importCheckpoint(file, dir, options);
  return loadSdModel(dir);
}

describe('an fp32 import of the tiny checkpoint', () => {
  let model: SdModel;
  beforeAll(async () => {
    model = await imported('fp32', TINY_CHECKPOINT, { dtype: 'fp32' });
  });
  afterAll(() => model?.release());

  it('is loaded by the one loader, named and hashed after the file', () => {
    expect(model.name).toBe('model');
    expect(model.source?.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(model.unet.timestepType).toBe('float32');
    expect(model.vaeEncoder?.output).toBe('latent_parameters');
  });

  it("attends through onnxruntime's MultiHeadAttention (UNet and VAE; CLIP's masked attention stays plain)", () => {
    // 16 spatial transformers × (self + cross) in the UNet, one attention block in the VAE's middle
    expect(mhaNodes(model, 'unet')).toBe(32);
    expect(mhaNodes(model, 'vae_decoder')).toBe(1);
    expect(mhaNodes(model, 'text_encoder')).toBe(0);
  });

  it('CLIP: last_hidden_state after the final layer norm matches transformers', async () => {
    expectClose(await clipOut(model), 'clip_last_hidden_state', FP32_TOLERANCE);
  });

  it.each(['t961', 't1'] as const)('UNet at %s (a [1] timestep for a batch of 2) matches ldm', async (t) => {
    expectClose(await unetOut(model, t), `unet_${t}_eps`, FP32_TOLERANCE);
  });

  it('VAE decoder (post_quant_conv + Decoder) with the checkpoint’s own VAE matches ldm', async () => {
    expectClose(await decoderOut(model), 'vae_image', FP32_TOLERANCE);
  });

  it('VAE encoder: the first half of latent_parameters is quant_conv’s mean, as ldm', async () => {
    expectClose(await encoderMean(model), 'vae_encoder_mean', FP32_TOLERANCE, MEAN_VALUES);
  });

  it('runs a latent whose side is a multiple of 8 px but not of 64 (A1111 resizes before the concat)', async () => {
    const u = model.unet;
    const sample = floatTensor(u.sampleType, new Float32Array(2 * 4 * 12 * 20).fill(0.1), [2, 4, 12, 20]);
    const ctx = readReference('unet_context');
    const out = await u.session.run({
      sample,
      timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
      encoder_hidden_states: floatTensor(u.contextType, ctx.data, ctx.shape),
    });
    expect((out[u.output] as ort.Tensor).dims).toEqual([2, 4, 12, 20]);
  });
});

describe('an external VAE', () => {
  it.each([
    ['without a prefix (A1111 "SD VAE" files)', 'plain'],
    ['with first_stage_model. keys', 'prefixed'],
  ])('%s replaces the checkpoint’s decoder (vae2_image)', async (_, layout) => {
    let vae = TINY_VAE;
    if (layout === 'prefixed') {
      vae = path.join(work, 'prefixed-vae.safetensors');
      const raw = readRaw(TINY_VAE);
      writeRaw(vae, {
        ...raw,
        tensors: raw.tensors.map((t) => ({ ...t, name: `first_stage_model.${t.name}` })),
      });
    }
    const model = await imported(`vae-${layout}`, TINY_CHECKPOINT, { dtype: 'fp32', vae });
    try {
      expectClose(await decoderOut(model), 'vae2_image', FP32_TOLERANCE);
      expect(model.source?.vae?.name).toBe(path.basename(vae, '.safetensors'));
    } finally {
      await model.release();
    }
  });
});

describe('the older text-encoder layout', () => {
  it('cond_stage_model.transformer.* (no text_model level) gives the same CLIP output', async () => {
    const file = path.join(work, 'old-clip.safetensors');
    rewriteTiny(file, (tensors) =>
      tensors.map((t) => ({
        ...t,
        name: t.name.replace('cond_stage_model.transformer.text_model.', 'cond_stage_model.transformer.'),
      })),
    );
    const model = await imported('old-clip', file, { dtype: 'fp32' });
    try {
      expectClose(await clipOut(model), 'clip_last_hidden_state', FP32_TOLERANCE);
    } finally {
      await model.release();
    }
  });
});

describe('an fp16 import', () => {
  let model: SdModel;
  beforeAll(async () => {
    model = await imported('fp16', TINY_CHECKPOINT, { dtype: 'fp16' });
  });
  afterAll(() => model?.release());

  it('has float16 inputs and outputs, a float32 timestep, and fused attention as the fp32 import has', () => {
    expect(mhaNodes(model, 'unet')).toBe(32);
    expect(mhaNodes(model, 'vae_decoder')).toBe(1);
    expect(mhaNodes(model, 'text_encoder')).toBe(0);
    expect(model.unet.sampleType).toBe('float16');
    expect(model.textEncoder.outputType).toBe('float16');
    expect(model.vaeDecoder.type).toBe('float16');
    expect(model.unet.timestepType).toBe('float32');
  });

  it('matches every reference within 1e-2 of its largest value', async () => {
    expectClose(await clipOut(model), 'clip_last_hidden_state', FP16_TOLERANCE);
    expectClose(await unetOut(model, 't961'), 'unet_t961_eps', FP16_TOLERANCE);
    expectClose(await unetOut(model, 't1'), 'unet_t1_eps', FP16_TOLERANCE);
    expectClose(await decoderOut(model), 'vae_image', FP16_TOLERANCE);
    expectClose(await encoderMean(model), 'vae_encoder_mean', FP16_TOLERANCE, MEAN_VALUES);
  });
});
