/**
 * The main-thread side of the diffusion engine. The pipeline runs in a worker thread because
 * onnxruntime's run() blocks the thread it is called on; this class only passes plain data.
 */
import { Worker } from 'node:worker_threads';
import type { GenerationResult, Latent, ProgressEvent } from '../diffusion/pipeline.ts';
import type { GenerationRequest } from '../diffusion/request.ts';
import type {
  EngineSettings,
  ErrorKind,
  FromWorker,
  ModelInfo,
  ToWorker,
  UpscaleResult,
} from './protocol.ts';

export type { EngineSettings, ModelInfo, UpscaleResult };

export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    readonly kind: ErrorKind | 'load',
    message: string,
  ) {
    super(message);
  }
}

export interface EngineRunOptions {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** One upscaled image per value; defaults to the request's denoise. */
  denoises?: number[];
}

export interface EngineLog {
  info(msg: string): void;
  warn(msg: string): void;
}

interface Pending {
  resolve(value: FromWorker): void;
  reject(err: Error): void;
  onProgress: ((event: ProgressEvent) => void) | undefined;
}

/** Structured clone turns Buffers into plain Uint8Arrays; give callers Buffers back. */
function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export class Engine {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    readonly model: ModelInfo,
    private readonly log: EngineLog | undefined,
  ) {
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    const failAll = (reason: string) => {
      for (const p of this.pending.values()) p.reject(new EngineError('internal', reason));
      this.pending.clear();
    };
    worker.on('error', (err) => failAll(`engine worker crashed: ${err.message}`));
    worker.on('exit', (code) => {
      if (!this.closed) failAll(`engine worker exited (code ${code})`);
    });
  }

  /** Starts the worker and loads the model once; rejects with the loader's message. */
  static start(settings: EngineSettings, log?: EngineLog): Promise<Engine> {
    const worker = new Worker(new URL('./host-entry.mjs', import.meta.url), { workerData: settings });
    return new Promise((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.type === 'log') {
          log?.[msg.level](msg.message);
        } else if (msg.type === 'ready') {
          worker.off('message', onMessage);
          worker.off('error', onError);
          resolve(new Engine(worker, msg.model, log));
        } else if (msg.type === 'load-failed') {
          void worker.terminate();
          reject(new EngineError('load', msg.message));
        }
      };
      const onError = (err: Error) =>
        reject(new EngineError('load', `engine worker failed to start: ${err.message}`));
      worker.on('message', onMessage);
      worker.once('error', onError);
    });
  }

  private onMessage(msg: FromWorker): void {
    if (msg.type === 'log') {
      this.log?.[msg.level](msg.message);
      return;
    }
    if (msg.type === 'progress') {
      this.pending
        .get(msg.id)
        ?.onProgress?.(
          msg.event.preview ? { ...msg.event, preview: asBuffer(msg.event.preview) } : msg.event,
        );
      return;
    }
    if (msg.type !== 'generated' && msg.type !== 'upscaled' && msg.type !== 'failed') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.type === 'failed') p.reject(new EngineError(msg.kind, msg.message));
    else p.resolve(msg);
  }

  private submit(message: ToWorker & { id: number }, options: EngineRunOptions): Promise<FromWorker> {
    if (this.closed) return Promise.reject(new EngineError('internal', 'engine is closed'));
    const { id } = message;
    return new Promise<FromWorker>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new EngineError('cancelled', 'generation cancelled'));
        return;
      }
      this.pending.set(id, { resolve, reject, onProgress: options.onProgress });
      options.signal?.addEventListener(
        'abort',
        () => this.worker.postMessage({ type: 'cancel', id } satisfies ToWorker),
        {
          once: true,
        },
      );
      this.worker.postMessage(message);
    });
  }

  /** Base pass, then one hires pass per denoise value from that same base latent. */
  async generate(request: GenerationRequest, options: EngineRunOptions = {}): Promise<GenerationResult> {
    const id = this.nextId++;
    const denoises = options.denoises ?? [request.denoise];
    const msg = await this.submit({ type: 'generate', id, request, denoises }, options);
    const { result } = msg as Extract<FromWorker, { type: 'generated' }>;
    return {
      ...result,
      base: { ...result.base, png: asBuffer(result.base.png) },
      upscaled: result.upscaled.map((u) => ({ ...u, png: asBuffer(u.png) })),
    };
  }

  /** Hires passes from a stored base latent (re-upscale, denoise comparison) without the base pass. */
  async upscale(
    request: GenerationRequest,
    latent: Latent,
    options: EngineRunOptions = {},
  ): Promise<UpscaleResult> {
    const id = this.nextId++;
    const denoises = options.denoises ?? [request.denoise];
    const msg = await this.submit({ type: 'upscale', id, request, latent, denoises }, options);
    const { result } = msg as Extract<FromWorker, { type: 'upscaled' }>;
    return { ...result, upscaled: result.upscaled.map((u) => ({ ...u, png: asBuffer(u.png) })) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies ToWorker);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    await this.worker.terminate();
  }
}
