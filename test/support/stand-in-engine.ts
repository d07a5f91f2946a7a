// An engine stand-in for queue tests: each call waits until the test finishes it, fails it, or
// the job's signal aborts it. The real engine is used by the end-to-end job tests.
import type { GenerationResult, Latent } from '../../src/diffusion/pipeline.ts';
import type { GenerationRequest } from '../../src/diffusion/request.ts';
import type { EngineRunOptions, UpscaleResult } from '../../src/engine/engine.ts';
import { EngineError } from '../../src/engine/engine.ts';
import type { EngineLike } from '../../src/jobs/service.ts';

export interface Call {
  prompt: string;
  options: EngineRunOptions;
  /** Reports a step, as the engine does between steps. */
  progress(pass: 'base' | 'hires', step: number, total: number): void;
  finish(): void;
  fail(message: string): void;
}

const png = Buffer.from('not really a png');
const upscaledFor = (request: GenerationRequest, options: EngineRunOptions) =>
  (options.denoises ?? [request.denoise]).map((denoise) => ({
    png,
    width: 1,
    height: 1,
    infotext: 'up',
    denoise,
  }));

export class StandInEngine implements EngineLike {
  readonly calls: Call[] = [];
  /** `ignoreAbort`: a call that goes on after its signal aborts (a long step), until finished. */
  constructor(private readonly o: { ignoreAbort?: boolean; size?: number } = {}) {}

  get size(): number {
    return this.o.size ?? 1;
  }

  private waiters: ((c: Call) => void)[] = [];
  private handedOut = 0;

  /** Resolves with the next call not yet handed out, waiting for it to start if need be. */
  nextCall(): Promise<Call> {
    const ready = this.calls[this.handedOut];
    if (ready) {
      this.handedOut++;
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private start<T>(request: GenerationRequest, options: EngineRunOptions, result: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: Call = {
        prompt: request.prompt,
        options,
        progress: (pass, step, total) => options.onProgress?.({ pass, step, total }),
        finish: () => resolve(result()),
        fail: (message) => reject(new EngineError('internal', message)),
      };
      const cancelled = () => reject(new EngineError('cancelled', 'generation cancelled'));
      if (!this.o.ignoreAbort) {
        if (options.signal?.aborted) return cancelled();
        options.signal?.addEventListener('abort', cancelled);
      }
      this.calls.push(call);
      const waiter = this.waiters.shift();
      if (waiter) {
        this.handedOut++;
        waiter(call);
      }
    });
  }

  generate(request: GenerationRequest, options: EngineRunOptions): Promise<GenerationResult> {
    return this.start(request, options, () => ({
      base: {
        png,
        width: request.width,
        height: request.height,
        infotext: 'base',
        latent: {
          data: new Float32Array(4 * (request.height / 8) * (request.width / 8)).fill(0.5),
          shape: [4, request.height / 8, request.width / 8],
        },
      },
      upscaled: upscaledFor(request, options),
      timings: { baseMs: 1, hiresMs: [1], decodeMs: 1 },
    }));
  }

  upscale(request: GenerationRequest, _latent: Latent, options: EngineRunOptions): Promise<UpscaleResult> {
    return this.start(request, options, () => ({
      upscaled: upscaledFor(request, options),
      timings: { hiresMs: [1], decodeMs: 1 },
    }));
  }
}
