/**
 * Loads a Stable Diffusion 1.x ONNX folder in the diffusers-script or optimum layout, or one that
 * src/checkpoint/ imported from a single-file checkpoint (the same layout, plus checkpoint.json
 * naming the file it came from). Each session's inputs and outputs are read, not assumed (ids
 * int32/int64, timestep float32/float16/int64 of rank 0 or 1, fp16 exports); anything else fails
 * here, naming the file and the want.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DEVICE_PROVIDERS, inGroup } from '../../providers.ts';
import { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';
import { ModelLoadError, readJsonFile, requireRegularFile } from './model-files.ts';
import { type CheckpointSource, readCheckpointSource } from './model-identity.ts';
import { createCachedSession } from './optimized-cache.ts';

export { ModelLoadError };

export type FloatType = 'float32' | 'float16';

export interface LoadLog {
  warn(msg: string): void;
  info(msg: string): void;
}

export interface LoadOptions {
  /** onnxruntime execution providers in order of preference; cpu is the fallback. */
  executionProviders?: readonly string[];
  log?: LoadLog;
  /** Threads per session on the CPU provider (0 = onnxruntime's default). */
  intraOpThreads?: number;
  /** The GPU to run on, for the providers that take a device number (cuda, tensorrt, dml). */
  deviceId?: number | undefined;
  /**
   * Keep onnxruntime's optimised graphs here and load them on later starts (CPU provider only:
   * see optimized-cache.ts). Unset: optimise on every load.
   */
  optimizedDir?: string | undefined;
  /** More onnxruntime session options, over ours (the bench compares them this way). */
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Options for one provider by name, e.g. webgpu's `preferredLayout` (the bench compares them). */
  providerOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export interface TextEncoderPart {
  session: ort.InferenceSession;
  idsType: 'int32' | 'int64';
  outputType: FloatType;
  output: string;
}

export interface UnetPart {
  session: ort.InferenceSession;
  sampleType: FloatType;
  contextType: FloatType;
  timestepType: 'float32' | 'float16' | 'int64';
  /** 0: a scalar `[]`; 1: `[1]` / `[batch]`. */
  timestepRank: 0 | 1;
  output: string;
  /** The file holding the UNet's weights (A1111 "Model hash" hashes it). */
  weightsFile: string;
}

export interface VaeDecoderPart {
  session: ort.InferenceSession;
  type: FloatType;
  output: string;
}

export interface VaeEncoderPart {
  session: ort.InferenceSession;
  type: FloatType;
  /** `latent_sample` (4 channels) or optimum's `latent_parameters` (8: mean then log-variance). */
  output: 'latent_sample' | 'latent_parameters';
}

export interface SdModel {
  dir: string;
  /** What the infotext calls the model: the checkpoint's file name, else the folder's name. */
  name: string;
  /** The single-file checkpoint (and VAE) the folder was imported from, if it was. */
  source: CheckpointSource | undefined;
  tokenizer: ClipTokenizer;
  textEncoder: TextEncoderPart;
  unet: UnetPart;
  vaeDecoder: VaeDecoderPart;
  vaeEncoder: VaeEncoderPart | undefined;
  /** VAE latent scaling factor (0.18215 for SD 1.x). */
  scalingFactor: number;
  /** The execution providers the sessions actually run on. */
  executionProviders: string[];
  release(): Promise<void>;
}

/**
 * Our provider options where onnxruntime's defaults are slower. webgpu: channels-last
 * convolutions (the full-size UNet on an H100 took 0.59× the NCHW time a 512 step and 0.74× at
 * 1024 in fp16, 0.67× and 0.78× in fp32; README "Benchmarks").
 */
const PROVIDER_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  webgpu: { preferredLayout: 'NHWC' },
};

/** What onnxruntime is given for one provider: its name alone, or the name with its options. */
export function providerEntry(
  name: string,
  options: Pick<LoadOptions, 'deviceId' | 'providerOptions'>,
): string | ort.InferenceSession.ExecutionProviderConfig {
  const extra = {
    ...PROVIDER_DEFAULTS[name],
    ...(options.deviceId !== undefined && inGroup(DEVICE_PROVIDERS, name)
      ? { deviceId: options.deviceId }
      : {}),
    ...options.providerOptions?.[name],
  };
  return Object.keys(extra).length > 0
    ? ({ name, ...extra } as ort.InferenceSession.ExecutionProviderConfig)
    : name;
}

/**
 * An onnxruntime error's message without the source file, function and condition its failed
 * checks start with: what follows ("Failed to get a WebGPU adapter: No supported adapters").
 */
export function onnxruntimeReason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(
    /^\/onnxruntime_src\/\S+ [^\n]*? was false\. /,
    '',
  );
}

const PARTS = {
  text_encoder: 'the CLIP text encoder',
  unet: 'the UNet',
  vae_decoder: 'the VAE decoder',
} as const;

function tensorMeta(
  session: ort.InferenceSession,
  file: string,
  kind: 'input' | 'output',
  name: string,
): ort.InferenceSession.TensorValueMetadata {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const meta = list.find((m) => m.name === name);
  if (!meta) {
    throw new ModelLoadError(
      `${file}: expected an ${kind} named "${name}", found ${list.map((m) => `"${m.name}"`).join(', ') || 'none'}`,
    );
  }
  if (!meta.isTensor) throw new ModelLoadError(`${file}: ${kind} "${name}" is not a tensor`);
  return meta;
}

function expectType<T extends string>(
  meta: ort.InferenceSession.TensorValueMetadata,
  file: string,
  allowed: readonly T[],
): T {
  if (!(allowed as readonly string[]).includes(meta.type)) {
    throw new ModelLoadError(
      `${file}: "${meta.name}" has type ${meta.type}, expected ${allowed.join(' or ')}`,
    );
  }
  return meta.type as T;
}

function expectRank(meta: ort.InferenceSession.TensorValueMetadata, file: string, ranks: number[]): void {
  if (meta.shape.length > 0 && !ranks.includes(meta.shape.length)) {
    throw new ModelLoadError(
      `${file}: "${meta.name}" has ${meta.shape.length} dimensions [${meta.shape.join(', ')}], expected ${ranks.join(' or ')}`,
    );
  }
}

/** The external-data file names the diffusers script and optimum write beside a model.onnx. */
const EXTERNAL_DATA = ['weights.pb', 'model.onnx_data'];

/** The external-data file beside a model.onnx, if the export has one. */
function weightsFileOf(dir: string): string {
  for (const name of EXTERNAL_DATA) {
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return path.join(dir, 'model.onnx');
}

/** onnxruntime opens a part's model.onnx and its external data: both must be regular files. */
function checkPartFiles(partDir: string): void {
  requireRegularFile(path.join(partDir, 'model.onnx'));
  for (const name of EXTERNAL_DATA) {
    const p = path.join(partDir, name);
    if (existsSync(p)) requireRegularFile(p);
  }
}

function readScalingFactor(dir: string): number {
  for (const part of ['vae_decoder', 'vae']) {
    const file = path.join(dir, part, 'config.json');
    if (!existsSync(file)) continue;
    const config = readJsonFile(file) as { scaling_factor?: unknown } | null;
    const value = config?.scaling_factor;
    if (typeof value === 'number' && value > 0) return value;
  }
  return 0.18215;
}

export async function loadSdModel(dir: string, options: LoadOptions = {}): Promise<SdModel> {
  const missing: string[] = [];
  for (const [part, what] of Object.entries(PARTS)) {
    if (!existsSync(path.join(dir, part, 'model.onnx'))) missing.push(`${part}/model.onnx (${what})`);
  }
  for (const f of ['vocab.json', 'merges.txt']) {
    if (!existsSync(path.join(dir, 'tokenizer', f))) missing.push(`tokenizer/${f} (the CLIP tokenizer)`);
  }
  if (missing.length > 0) {
    throw new ModelLoadError(`model folder ${dir} is missing ${missing.join(', ')}`);
  }
  for (const part of [...Object.keys(PARTS), 'vae_encoder']) {
    if (part === 'vae_encoder' && !existsSync(path.join(dir, part, 'model.onnx'))) continue;
    checkPartFiles(path.join(dir, part));
  }

  let providers = [...(options.executionProviders ?? ['cpu'])];
  const sessions: ort.InferenceSession[] = [];
  const open = async (part: string): Promise<ort.InferenceSession> => {
    const file = path.join(dir, part, 'model.onnx');
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      // errors only: a GPU provider's notes that it leaves shape nodes to the CPU, on every load,
      // are expected; a real failure still comes back as the error it throws
      logSeverityLevel: 3,
      ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
      ...options.sessionOptions,
    };
    try {
      const executionProviders = providers.map((name) => providerEntry(name, options));
      const s = await createSession(file, { ...base, executionProviders }, part);
      sessions.push(s);
      return s;
    } catch (err) {
      const reason = onnxruntimeReason(err);
      if (providers.some((p) => p !== 'cpu')) {
        options.log?.warn(
          `execution providers [${providers.join(', ')}] failed for ${file} (${reason.split('\n')[0]}); FALLING BACK TO CPU — generation will be much slower. See README "GPU set-up".`,
        );
        providers = ['cpu'];
        return open(part);
      }
      throw new ModelLoadError(`${file}: onnxruntime could not load it: ${reason.split('\n')[0]}`);
    }
  };

  const createSession = (file: string, sessionOptions: ort.InferenceSession.SessionOptions, part: string) =>
    options.optimizedDir && providers.length === 1 && providers[0] === 'cpu'
      ? createCachedSession(file, sessionOptions, {
          dir: path.join(options.optimizedDir, part),
          threads: options.intraOpThreads,
          log: options.log,
        })
      : ort.InferenceSession.create(file, sessionOptions);

  try {
    const source = readCheckpointSource(dir);
    const tokenizer = ClipTokenizer.fromFolder(path.join(dir, 'tokenizer'));

    const teFile = path.join(dir, 'text_encoder', 'model.onnx');
    const te = await open('text_encoder');
    const ids = tensorMeta(te, teFile, 'input', 'input_ids');
    expectRank(ids, teFile, [2]);
    const lhs = tensorMeta(te, teFile, 'output', 'last_hidden_state');
    expectRank(lhs, teFile, [3]);
    const textEncoder: TextEncoderPart = {
      session: te,
      idsType: expectType(ids, teFile, ['int32', 'int64'] as const),
      outputType: expectType(lhs, teFile, ['float32', 'float16'] as const),
      output: 'last_hidden_state',
    };

    const unetFile = path.join(dir, 'unet', 'model.onnx');
    const un = await open('unet');
    const sample = tensorMeta(un, unetFile, 'input', 'sample');
    expectRank(sample, unetFile, [4]);
    const ts = tensorMeta(un, unetFile, 'input', 'timestep');
    expectRank(ts, unetFile, [0, 1]);
    const ctx = tensorMeta(un, unetFile, 'input', 'encoder_hidden_states');
    expectRank(ctx, unetFile, [3]);
    const unetOut = un.outputMetadata[0];
    if (!unetOut) throw new ModelLoadError(`${unetFile}: has no outputs, expected "out_sample"`);
    const unet: UnetPart = {
      session: un,
      sampleType: expectType(sample, unetFile, ['float32', 'float16'] as const),
      contextType: expectType(ctx, unetFile, ['float32', 'float16'] as const),
      timestepType: expectType(ts, unetFile, ['float32', 'float16', 'int64'] as const),
      timestepRank: ts.shape.length === 0 ? 0 : 1,
      output: unetOut.name,
      weightsFile: weightsFileOf(path.join(dir, 'unet')),
    };

    const decFile = path.join(dir, 'vae_decoder', 'model.onnx');
    const dec = await open('vae_decoder');
    const latentIn = tensorMeta(dec, decFile, 'input', 'latent_sample');
    expectRank(latentIn, decFile, [4]);
    tensorMeta(dec, decFile, 'output', 'sample');
    const vaeDecoder: VaeDecoderPart = {
      session: dec,
      type: expectType(latentIn, decFile, ['float32', 'float16'] as const),
      output: 'sample',
    };

    let vaeEncoder: VaeEncoderPart | undefined;
    if (existsSync(path.join(dir, 'vae_encoder', 'model.onnx'))) {
      const encFile = path.join(dir, 'vae_encoder', 'model.onnx');
      const enc = await open('vae_encoder');
      const image = tensorMeta(enc, encFile, 'input', 'sample');
      const outName = enc.outputMetadata.find(
        (m) => m.name === 'latent_sample' || m.name === 'latent_parameters',
      );
      if (!outName) {
        throw new ModelLoadError(`${encFile}: expected an output "latent_sample" or "latent_parameters"`);
      }
      vaeEncoder = {
        session: enc,
        type: expectType(image, encFile, ['float32', 'float16'] as const),
        output: outName.name as VaeEncoderPart['output'],
      };
    }

    const used = providers;
    options.log?.info(`loaded model ${path.basename(dir)} on [${used.join(', ')}]`);
    return {
      dir,
      name: source?.model.name ?? path.basename(path.resolve(dir)),
      source,
      tokenizer,
      textEncoder,
      unet,
      vaeDecoder,
      vaeEncoder,
      scalingFactor: readScalingFactor(dir),
      executionProviders: used,
      async release() {
        await Promise.all(sessions.map((s) => s.release()));
      },
    };
  } catch (err) {
    await Promise.all(sessions.map((s) => s.release()));
    throw err;
  }
}
