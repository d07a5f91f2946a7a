/**
 * ENGINE_WORKERS engines (one worker thread and one loaded model each, typically one per GPU),
 * used as one: each job goes to the engine with the fewest jobs in flight. The job service's GPU
 * limiter admits at most that many jobs at once, so with N engines N jobs really run together.
 */
import type { GenerationResult, Latent } from '../diffusion/pipeline.ts';
import type { GenerationRequest } from '../diffusion/request.ts';
import {
  Engine,
  type EngineLog,
  type EngineRunOptions,
  type EngineSettings,
  type ModelInfo,
  type UpscaleResult,
} from './engine.ts';

export class EnginePool {
  private readonly inFlight: number[];

  private constructor(private readonly engines: Engine[]) {
    this.inFlight = engines.map(() => 0);
  }

  static async start(size: number, settings: EngineSettings, log?: EngineLog): Promise<EnginePool> {
    const started = await Promise.allSettled(Array.from({ length: size }, () => Engine.start(settings, log)));
    const engines = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = started.find((s) => s.status === 'rejected');
    if (failure) {
      await Promise.all(engines.map((e) => e.close()));
      throw failure.reason;
    }
    return new EnginePool(engines);
  }

  get model(): ModelInfo {
    return (this.engines[0] as Engine).model;
  }

  private async use<T>(work: (engine: Engine) => Promise<T>): Promise<T> {
    const i = this.inFlight.indexOf(Math.min(...this.inFlight));
    this.inFlight[i] = (this.inFlight[i] as number) + 1;
    try {
      return await work(this.engines[i] as Engine);
    } finally {
      this.inFlight[i] = (this.inFlight[i] as number) - 1;
    }
  }

  generate(request: GenerationRequest, options: EngineRunOptions = {}): Promise<GenerationResult> {
    return this.use((e) => e.generate(request, options));
  }

  upscale(
    request: GenerationRequest,
    latent: Latent,
    options: EngineRunOptions = {},
  ): Promise<UpscaleResult> {
    return this.use((e) => e.upscale(request, latent, options));
  }

  async close(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.close()));
  }
}
