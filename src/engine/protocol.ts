// Messages between the main-thread Engine and its worker thread: plain, structured-clonable data.
import type { GenerationResult, Latent, ProgressEvent, UpscaleResult } from '../diffusion/pipeline.ts';
import type { GenerationRequest } from '../diffusion/request.ts';

export interface EngineSettings {
  modelDir: string;
  executionProviders: string[];
  previewEvery: number;
  /** 'fp16' mimics A1111's default half-precision UNet timestep; 'exact' is `--no-half`. */
  timestepRounding: 'fp16' | 'exact';
  intraOpThreads?: number;
  /** Latent shapes to warm up at once after loading (base and hires), before the first job. */
  warmUp?: { height: number; width: number }[];
  /** Where onnxruntime's optimised graphs are kept between starts (CPU provider only). */
  optimizedDir?: string;
  /** The GPU this engine runs on (GPU_DEVICE_IDS), for cuda, tensorrt and dml. */
  deviceId?: number;
}

export interface ModelInfo {
  name: string;
  hash: string;
  /** A1111's old 8-digit hash, for a folder imported from a checkpoint file. */
  oldHash?: string;
  /** An external VAE the folder was imported with (infotext `VAE`, `VAE hash`). */
  vae?: { name: string; hash: string };
  executionProviders: string[];
}

export type { UpscaleResult };

export type ToWorker =
  | { type: 'generate'; id: number; request: GenerationRequest; denoises: number[] }
  | { type: 'upscale'; id: number; request: GenerationRequest; latent: Latent; denoises: number[] }
  | { type: 'cancel'; id: number }
  | { type: 'close' }
  /** End the thread at once (Engine.kill). */
  | { type: 'exit' };

/** 'request': the request itself is at fault (a RequestError naming `option`); shown to the user. */
export type ErrorKind = 'cancelled' | 'request' | 'internal';

/** An error as it crosses the thread boundary: enough to log it with its stack on this side. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** The option a RequestError names. */
  option?: string;
}

export type FromWorker =
  | { type: 'ready'; model: ModelInfo }
  | { type: 'load-failed'; error: WireError }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'progress'; id: number; event: ProgressEvent }
  | { type: 'generated'; id: number; result: GenerationResult }
  | { type: 'upscaled'; id: number; result: UpscaleResult }
  | { type: 'failed'; id: number; kind: ErrorKind; error: WireError };
