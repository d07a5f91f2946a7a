/**
 * Writes a tiny Stable Diffusion ONNX folder in the exact layouts the real exporters produce
 * (diffusers' `convert_stable_diffusion_checkpoint_to_onnx.py`, optimum's `export onnx`), whose
 * parts compute known functions, so tests can check the pipeline against closed forms:
 *
 * - text_encoder: last_hidden_state[b,s,j] = sin(id·(j+1)·0.001 + j) (hidden size `hidden`).
 * - unet: the exact denoiser for data N(mu(cond), s²I): σ = t_to_sigma(t) from the SD 1.x table,
 *   x = sample·√(σ²+1), mu_c = muScale·mean_s(ehs[b,s,c]) for c < 4, eps = σ/(s²+σ²)·(x − mu).
 * - vae_decoder: tanh(1×1 conv of latent·0.18215), nearest ×8; vae_encoder: 8×8 mean pool, 1×1 conv.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SD1_SCHEDULE } from '../schedule.ts';
import { type ElemType, GraphBuilder } from './onnx-graph.ts';

export interface TinyModelOptions {
  layout: 'diffusers' | 'optimum';
  /**
   * A CLIP tokenizer folder to copy (`vocab.json`, `merges.txt`, `special_tokens_map.json`,
   * `tokenizer_config.json`): the tokenizer is real even when the networks are not.
   */
  tokenizerDir: string;
  dtype?: 'fp32' | 'fp16';
  /** UNet timestep input: float [batch] (diffusers), int64 [steps] (optimum < 1.24), float32 [] (≥ 1.24). */
  timestep?: 'float-batch' | 'int64' | 'float-scalar';
  hidden?: number;
  /** Data standard deviation s of the Gaussian the UNet denoises exactly. */
  dataStd?: number;
  muScale?: number;
  /**
   * Adds an N×N MatMul chain fed by the timestep to every UNet call (its result is multiplied by
   * zero): a UNet that takes real time, for event-loop and benchmark tests. 0 = none.
   */
  unetWork?: number;
  /** Leave a part out, to test the loader's messages. */
  omit?: 'unet' | 'text_encoder' | 'vae_decoder' | 'tokenizer';
}

export interface TinyModelFacts {
  dir: string;
  hidden: number;
  dataStd: number;
  muScale: number;
  /** The file whose SHA-256 is the A1111 "Model hash". */
  weightsFile: string;
}

const DEFAULTS = { dtype: 'fp32', hidden: 8, dataStd: 0.5, muScale: 1 } as const;

function writeJson(file: string, value: unknown) {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function textEncoder(dir: string, idsType: 'int32' | 'int64', floatType: ElemType, hidden: number) {
  const g = new GraphBuilder();
  const ids = g.input('input_ids', idsType, ['batch', 'sequence']);
  const f = g.op('Unsqueeze', [g.cast(ids, 'float32'), g.constInt64([2])]);
  const freq = g.constFloat(
    Array.from({ length: hidden }, (_, j) => (j + 1) * 0.001),
    [hidden],
  );
  const phase = g.constFloat(
    Array.from({ length: hidden }, (_, j) => j),
    [hidden],
  );
  const hiddenState = g.op('Sin', [g.op('Add', [g.op('Mul', [f, freq]), phase])]);
  const pooled = g.op('ReduceMean', [hiddenState], { axes: [1], keepdims: 0 });
  g.op(
    'Identity',
    [floatType === 'float16' ? g.cast(hiddenState, 'float16') : hiddenState],
    {},
    'last_hidden_state',
  );
  g.op('Identity', [floatType === 'float16' ? g.cast(pooled, 'float16') : pooled], {}, 'pooler_output');
  g.output('last_hidden_state', floatType, ['batch', 'sequence', hidden]);
  g.output('pooler_output', floatType, ['batch', hidden]);
  g.write(dir, 'text_encoder');
}

function unet(
  dir: string,
  externalFile: string,
  floatType: ElemType,
  timestep: NonNullable<TinyModelOptions['timestep']>,
  hidden: number,
  s: number,
  muScale: number,
  work: number,
) {
  const g = new GraphBuilder(externalFile);
  const sample = g.input('sample', floatType, ['batch', 4, 'height', 'width']);
  const tsType: ElemType =
    timestep === 'int64' ? 'int64' : timestep === 'float-scalar' ? 'float32' : floatType;
  const ts = g.input(
    'timestep',
    tsType,
    timestep === 'float-scalar' ? [] : [timestep === 'int64' ? 'steps' : 'batch'],
  );
  const ehs = g.input('encoder_hidden_states', floatType, ['batch', 'sequence', hidden]);

  const t = g.op('Reshape', [g.cast(ts, 'float32'), g.constInt64([-1, 1, 1, 1])]);
  const lo = g.op('Floor', [t]);
  const hi = g.op('Ceil', [t]);
  const w = g.op('Sub', [t, lo]);
  const table = g.constFloat(SD1_SCHEDULE.logSigmas, [SD1_SCHEDULE.logSigmas.length], 'log_sigmas');
  const gLo = g.op('Gather', [table, g.cast(lo, 'int64')], { axis: 0 });
  const gHi = g.op('Gather', [table, g.cast(hi, 'int64')], { axis: 0 });
  const one = g.constFloat([1], []);
  const logSigma = g.op('Add', [g.op('Mul', [g.op('Sub', [one, w]), gLo]), g.op('Mul', [w, gHi])]);
  const sigma = g.op('Exp', [logSigma]);
  const sigma2 = g.op('Mul', [sigma, sigma]);
  const x = g.op('Mul', [g.cast(sample, 'float32'), g.op('Sqrt', [g.op('Add', [sigma2, one])])]);

  const meanTokens = g.op('ReduceMean', [g.cast(ehs, 'float32')], { axes: [1], keepdims: 0 });
  const first4 = g.op('Slice', [meanTokens, g.constInt64([0]), g.constInt64([4]), g.constInt64([1])]);
  const mu = g.op('Mul', [
    g.op('Reshape', [first4, g.constInt64([-1, 4, 1, 1])]),
    g.constFloat([muScale], []),
  ]);
  const coef = g.op('Div', [sigma, g.op('Add', [g.constFloat([s * s], []), sigma2])]);
  let eps = g.op('Mul', [coef, g.op('Sub', [x, mu])]);
  if (work > 0) {
    // depends on an input, so onnxruntime cannot fold it away at load time
    const square = g.op('Expand', [g.op('Reshape', [t, g.constInt64([1, 1])]), g.constInt64([work, work])]);
    const weights = g.constFloat(
      Array.from({ length: work * work }, (_, k) => ((k * 7919) % 13) / 13),
      [work, work],
    );
    const product = g.op('MatMul', [g.op('MatMul', [square, weights]), weights]);
    // scaled far below float32 resolution of eps: the sum leaves eps unchanged
    const zero = g.op('Mul', [g.op('ReduceMean', [product], { keepdims: 0 }), g.constFloat([1e-30], [])]);
    eps = g.op('Add', [eps, zero]);
  }
  g.op('Identity', [floatType === 'float16' ? g.cast(eps, 'float16') : eps], {}, 'out_sample');
  g.output('out_sample', floatType, ['batch', 4, 'height', 'width']);
  g.write(dir, 'unet');
}

const DECODER_WEIGHTS = [0.8, 0, 0, 0.2, 0, 0.8, 0, 0.2, 0, 0, 0.8, 0.2].map((v) => v * 0.18215);

function vaeDecoder(dir: string, floatType: ElemType) {
  const g = new GraphBuilder();
  const z = g.input('latent_sample', floatType, ['batch', 4, 'height', 'width']);
  const conv = g.op('Conv', [
    g.cast(z, 'float32'),
    g.constFloat(DECODER_WEIGHTS, [3, 4, 1, 1]),
    g.constFloat([0, 0, 0], [3]),
  ]);
  const up = g.op('Resize', [conv, '', g.constFloat([1, 1, 8, 8], [4])], { mode: 'nearest' });
  const img = g.op('Tanh', [up]);
  g.op('Identity', [floatType === 'float16' ? g.cast(img, 'float16') : img], {}, 'sample');
  g.output('sample', floatType, ['batch', 3, 'height_out', 'width_out']);
  g.write(dir, 'vae_decoder');
}

function vaeEncoder(dir: string, floatType: ElemType, parameters: boolean) {
  const g = new GraphBuilder();
  const img = g.input('sample', floatType, ['batch', 3, 'height', 'width']);
  const pooled = g.op('AveragePool', [g.cast(img, 'float32')], { kernel_shape: [8, 8], strides: [8, 8] });
  const channels = parameters ? 8 : 4;
  const weights = Array.from({ length: channels * 3 }, (_, k) => (k % 3 === Math.floor(k / 3) % 3 ? 1 : 0));
  const latent = g.op('Conv', [pooled, g.constFloat(weights, [channels, 3, 1, 1])]);
  const name = parameters ? 'latent_parameters' : 'latent_sample';
  g.op('Identity', [floatType === 'float16' ? g.cast(latent, 'float16') : latent], {}, name);
  g.output(name, floatType, ['batch', channels, 'height_latent', 'width_latent']);
  g.write(dir, 'vae_encoder');
}

export function writeTinyModel(dir: string, options: TinyModelOptions): TinyModelFacts {
  const dtype = options.dtype ?? DEFAULTS.dtype;
  const hidden = options.hidden ?? DEFAULTS.hidden;
  const dataStd = options.dataStd ?? DEFAULTS.dataStd;
  const muScale = options.muScale ?? DEFAULTS.muScale;
  const optimum = options.layout === 'optimum';
  const timestep = options.timestep ?? (optimum ? 'int64' : 'float-batch');
  const floatType: ElemType = dtype === 'fp16' ? 'float16' : 'float32';
  const externalFile = optimum ? 'model.onnx_data' : 'weights.pb';
  const part = (name: string) => {
    const p = path.join(dir, name);
    mkdirSync(p, { recursive: true });
    return p;
  };

  mkdirSync(dir, { recursive: true });
  if (options.omit !== 'text_encoder')
    textEncoder(part('text_encoder'), optimum ? 'int64' : 'int32', floatType, hidden);
  if (options.omit !== 'unet')
    unet(part('unet'), externalFile, floatType, timestep, hidden, dataStd, muScale, options.unetWork ?? 0);
  if (options.omit !== 'vae_decoder') vaeDecoder(part('vae_decoder'), floatType);
  vaeEncoder(part('vae_encoder'), floatType, optimum);
  if (options.omit !== 'tokenizer') {
    const tok = part('tokenizer');
    for (const f of ['vocab.json', 'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json']) {
      copyFileSync(path.join(options.tokenizerDir, f), path.join(tok, f));
    }
  }
  writeJson(path.join(part('scheduler'), 'scheduler_config.json'), {
    _class_name: 'PNDMScheduler',
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    num_train_timesteps: 1000,
    skip_prk_steps: true,
  });
  if (optimum) {
    writeJson(path.join(dir, 'model_index.json'), {
      _class_name: 'StableDiffusionPipeline',
      _diffusers_version: '0.30.0',
      text_encoder: ['transformers', 'CLIPTextModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
      scheduler: ['diffusers', 'PNDMScheduler'],
    });
    writeJson(path.join(part('vae_decoder'), 'config.json'), {
      _class_name: 'AutoencoderKL',
      scaling_factor: 0.18215,
    });
    writeJson(path.join(part('unet'), 'config.json'), {
      _class_name: 'UNet2DConditionModel',
      cross_attention_dim: hidden,
    });
    writeJson(path.join(part('text_encoder'), 'config.json'), {
      hidden_size: hidden,
      max_position_embeddings: 77,
    });
  } else {
    writeJson(path.join(dir, 'model_index.json'), {
      _class_name: 'OnnxStableDiffusionPipeline',
      _diffusers_version: '0.30.0',
      text_encoder: ['diffusers', 'OnnxRuntimeModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'OnnxRuntimeModel'],
      vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
      vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
      scheduler: ['diffusers', 'PNDMScheduler'],
    });
  }
  return { dir, hidden, dataStd, muScale, weightsFile: path.join(dir, 'unet', externalFile) };
}
