/**
 * `size` engines (one worker thread and one loaded model each) used as one. The pool is not a
 * scheduler: the job service's dispatch is the one gate on how many jobs run, and it never hands
 * the pool more jobs at once than it has engines, so each call finds an idle engine. The pool
 * only picks it (the least busy live one, never a dead one) and replaces an engine whose worker
 * dies, so that the next job runs; the dead engine's own calls have already failed with 'crashed'.
 */
import type { GenerationResult, Latent } from '../diffusion/pipeline.ts';
import type { GenerationRequest } from '../diffusion/request.ts';
import {
  Engine,
  EngineError,
  type EngineLog,
  type EngineRunOptions,
  type EngineSettings,
  type ModelInfo,
  type UpscaleResult,
} from './engine.ts';

export interface EnginePoolOptions {
  /** How each engine, replacements included, is started (a caller may want to hold on to them). */
  startEngine?: (settings: EngineSettings, log?: EngineLog) => Promise<Engine>;
  /** GPU_DEVICE_IDS: engine i (and its replacements) runs on deviceIds[i]. */
  deviceIds?: readonly number[] | undefined;
}

interface Slot {
  /** Its place in the pool, which picks its GPU. */
  index: number;
  engine: Engine | undefined;
  /** A replacement on its way after a death. */
  starting: Promise<Engine> | undefined;
  busy: number;
}

export class EnginePool {
  private closed = false;
  private readonly slots: Slot[];

  private constructor(
    engines: Engine[],
    private readonly start: (index: number) => Promise<Engine>,
    private readonly log: EngineLog | undefined,
  ) {
    this.slots = engines.map((engine, index) => ({ index, engine, starting: undefined, busy: 0 }));
    for (const slot of this.slots) this.watch(slot, slot.engine as Engine);
  }

  static async start(
    size: number,
    settings: EngineSettings,
    log?: EngineLog,
    options: EnginePoolOptions = {},
  ): Promise<EnginePool> {
    const startEngine = options.startEngine ?? Engine.start;
    const ids = options.deviceIds;
    const start = (index: number) =>
      startEngine(ids?.length ? { ...settings, deviceId: ids[index % ids.length] as number } : settings, log);
    const started = await Promise.allSettled(Array.from({ length: size }, (_, i) => start(i)));
    const engines = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = started.find((s) => s.status === 'rejected');
    if (failure) {
      await Promise.all(engines.map((e) => e.close()));
      throw failure.reason;
    }
    return new EnginePool(engines, start, log);
  }

  /** How many engines the pool runs: how many jobs the dispatcher may hand it at once. */
  get size(): number {
    return this.slots.length;
  }

  get model(): ModelInfo {
    const slot = this.slots.find((s) => s.engine);
    if (!slot?.engine) throw new EngineError('crashed', 'no engine is running');
    return slot.engine.model;
  }

  private watch(slot: Slot, engine: Engine): void {
    void engine.died.then((reason) => {
      if (this.closed || slot.engine !== engine) return;
      slot.engine = undefined;
      this.log?.warn(
        `engine ${this.slots.indexOf(slot) + 1} of ${this.size} died (${reason.message}); starting a new one`,
      );
      this.replace(slot).catch(() => {
        // logged in replace(); the next call that needs this slot tries again
      });
    });
  }

  private replace(slot: Slot): Promise<Engine> {
    slot.starting ??= this.start(slot.index).then(
      async (engine) => {
        slot.starting = undefined;
        if (this.closed) {
          await engine.close();
          throw new EngineError('closed', 'engine pool is closed');
        }
        slot.engine = engine;
        this.watch(slot, engine);
        this.log?.info(`engine ${this.slots.indexOf(slot) + 1} of ${this.size} restarted`);
        return engine;
      },
      (err: unknown) => {
        slot.starting = undefined;
        this.log?.warn(
          `engine ${this.slots.indexOf(slot) + 1} of ${this.size} could not be restarted: ${(err as Error).message}`,
        );
        throw err;
      },
    );
    return slot.starting;
  }

  /** The least busy live engine; with none alive, the first replacement to be ready. */
  private async pick(): Promise<{ slot: Slot; engine: Engine }> {
    if (this.closed) throw new EngineError('closed', 'engine pool is closed');
    let best: Slot | undefined;
    for (const slot of this.slots) {
      if (slot.engine?.alive && (!best || slot.busy < best.busy)) best = slot;
    }
    if (best?.engine) return { slot: best, engine: best.engine };
    const slot = this.slots.find((s) => s.starting) ?? (this.slots.find((s) => !s.engine?.alive) as Slot);
    return { slot, engine: await this.replace(slot) };
  }

  private async use<T>(work: (engine: Engine) => Promise<T>): Promise<T> {
    const { slot, engine } = await this.pick();
    slot.busy++;
    try {
      return await work(engine);
    } finally {
      slot.busy--;
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
    this.closed = true;
    const starting = this.slots.flatMap((s) => (s.starting ? [s.starting.catch(() => undefined)] : []));
    await Promise.all([...this.slots.map((s) => s.engine?.close()), ...starting]);
  }
}
