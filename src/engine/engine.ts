/**
 * The main-thread side of the diffusion engine. The pipeline runs in a worker thread because
 * onnxruntime's run() blocks the thread it is called on; this class only passes plain data, and
 * notices at once when that thread dies.
 */
import { Worker } from 'node:worker_threads';
import type { GenerationResult, Latent, ProgressEvent } from '../diffusion/pipeline.ts';
import type { GenerationRequest } from '../diffusion/request.ts';
import { commandLineBytes, MAX_COMMAND_LINE_BYTES, WORKER_STACK_MB } from './command-line.ts';
import type {
  EngineSettings,
  ErrorKind,
  FromWorker,
  ModelInfo,
  ToWorker,
  UpscaleResult,
  WireError,
} from './protocol.ts';

export type { EngineSettings, ModelInfo, UpscaleResult };

/**
 * 'load': the model could not be loaded; 'crashed': the worker died (its calls fail at once);
 * 'closed': the engine was closed; 'request': the request is at fault, `option` names what to change.
 */
export type EngineErrorKind = ErrorKind | 'load' | 'crashed' | 'closed';

export class EngineError extends Error {
  override name = 'EngineError';
  /** For kind 'request': the option the message names. */
  readonly option: string | undefined;

  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    options: ErrorOptions & { option?: string } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.option = options.option;
  }
}

/** The worker's error rebuilt on this side, so that a log shows where in the worker it was thrown. */
function fromWire(kind: EngineErrorKind, wire: WireError): EngineError {
  const cause = new Error(wire.message);
  cause.name = wire.name;
  if (wire.stack) cause.stack = wire.stack;
  return new EngineError(kind, wire.message, { cause, ...(wire.option ? { option: wire.option } : {}) });
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

function startWorker(settings: EngineSettings): Worker {
  return new Worker(new URL('./host-entry.mjs', import.meta.url), {
    workerData: settings,
    resourceLimits: { stackSizeMb: WORKER_STACK_MB },
  });
}

export class Engine {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closing = false;
  private killed = false;
  private death: EngineError | undefined;
  private announceDeath: (err: EngineError) => void = () => {};
  /** Settles when the worker dies unexpectedly (never after `close()`), with the reason. */
  readonly died: Promise<EngineError>;

  private constructor(
    private readonly worker: Worker,
    readonly model: ModelInfo,
    private readonly log: EngineLog | undefined,
  ) {
    this.died = new Promise((resolve) => {
      this.announceDeath = resolve;
    });
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    // an uncaught error is reported before the exit that follows it: keep the first, it has the cause
    worker.on('error', (err) =>
      this.ended(new EngineError('crashed', `engine worker crashed: ${err.message}`, { cause: err })),
    );
    worker.on('exit', (code) => {
      if (this.closing) this.ended(new EngineError('closed', 'engine closed before the job finished'));
      else if (this.killed) this.ended(new EngineError('crashed', 'engine worker was killed'));
      else this.ended(new EngineError('crashed', `engine worker exited unexpectedly (code ${code})`));
    });
  }

  /** Starts the worker and loads the model once; rejects with the loader's message. */
  static start(settings: EngineSettings, log?: EngineLog): Promise<Engine> {
    const bytes = commandLineBytes();
    if (bytes > MAX_COMMAND_LINE_BYTES) {
      return Promise.reject(
        new EngineError(
          'load',
          `the process's command line is ${bytes} bytes; onnxruntime needs it at most ${MAX_COMMAND_LINE_BYTES}`,
        ),
      );
    }
    const worker = startWorker(settings);
    return new Promise((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.type === 'log') {
          log?.[msg.level](msg.message);
        } else if (msg.type === 'ready') {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
          resolve(new Engine(worker, msg.model, log));
        } else if (msg.type === 'load-failed') {
          worker.off('exit', onExit);
          void worker.terminate();
          reject(fromWire('load', msg.error));
        }
      };
      const onError = (err: Error) =>
        reject(new EngineError('load', `engine worker failed to start: ${err.message}`, { cause: err }));
      const onExit = (code: number) =>
        reject(new EngineError('load', `engine worker exited while loading the model (code ${code})`));
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  }

  /** False once the worker has died or the engine is closed: no call will succeed again. */
  get alive(): boolean {
    return this.death === undefined && !this.closing;
  }

  private ended(reason: EngineError): void {
    if (this.death) return;
    this.death = reason;
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
    if (reason.kind === 'crashed') {
      this.log?.warn(reason.message);
      this.announceDeath(reason);
    }
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
    if (msg.type === 'failed') p.reject(fromWire(msg.kind, msg.error));
    else p.resolve(msg);
  }

  private submit(message: ToWorker & { id: number }, options: EngineRunOptions): Promise<FromWorker> {
    if (this.death) {
      return Promise.reject(new EngineError(this.death.kind, this.death.message, { cause: this.death }));
    }
    if (this.closing) return Promise.reject(new EngineError('closed', 'engine is closed'));
    const { id } = message;
    return new Promise<FromWorker>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new EngineError('cancelled', 'generation cancelled'));
        return;
      }
      this.pending.set(id, { resolve, reject, onProgress: options.onProgress });
      options.signal?.addEventListener(
        'abort',
        () => {
          if (this.pending.has(id)) this.worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
        },
        { once: true },
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

  /**
   * Ends the worker as a crash would, for an engine that must not be trusted any more: its calls
   * fail with kind 'crashed', `died` settles and a pool starts a new engine. The worker stops at
   * its next safe point (between two onnxruntime calls), not through Worker.terminate(): a worker
   * terminated inside a run() makes onnxruntime-node abort the whole process.
   */
  async kill(): Promise<void> {
    if (this.death || this.closing) return;
    this.killed = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'exit' } satisfies ToWorker);
    await exited;
  }

  /**
   * Cancels what is running or queued (it stops at its next step), releases the sessions and ends
   * the worker; later calls fail with 'closed'. Only a worker stuck in one call for `graceMs` is
   * terminated, which onnxruntime-node may answer by aborting the process (see `kill`).
   */
  async close(graceMs = 30_000): Promise<void> {
    if (this.closing || this.death) return;
    this.closing = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies ToWorker);
    const timer = setTimeout(() => void this.worker.terminate(), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
