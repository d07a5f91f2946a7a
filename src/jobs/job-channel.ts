/**
 * One job's event stream. Events are kept from the first one on (only the latest progress event,
 * with the latest preview: the only big payload; only the latest of positions in a row), so a
 * subscriber that arrives late still sees where the job stands, then every event after, until
 * the final one closes the stream.
 */
import type { FinalJobEvent, JobEvent } from './types.ts';

export const FINAL_EVENTS: ReadonlySet<JobEvent['type']> = new Set([
  'done',
  'failed',
  'cancelled',
  'interrupted',
]);

export function isFinal(event: JobEvent): event is FinalJobEvent {
  return FINAL_EVENTS.has(event.type);
}

export class JobChannel {
  private readonly kept: JobEvent[] = [];
  private readonly listeners = new Set<(event: JobEvent) => void>();
  private final: FinalJobEvent | undefined;
  private resolveFinal!: (event: FinalJobEvent) => void;
  /** The final event; never rejects (a failure is an event, not an exception). */
  readonly result = new Promise<FinalJobEvent>((resolve) => {
    this.resolveFinal = resolve;
  });

  get closed(): boolean {
    return this.final !== undefined;
  }

  push(event: JobEvent): void {
    if (this.final) return;
    let kept = event;
    // a waiting job's positions: only the latest is worth keeping (a busy queue moves a job's
    // position hundreds of times)
    if (event.type === 'position' && this.kept.at(-1)?.type === 'position') this.kept.pop();
    if (event.type === 'progress') {
      const last = this.kept.at(-1);
      if (last?.type === 'progress') {
        this.kept.pop();
        // a late subscriber still gets the latest preview, whichever step drew it
        const preview = event.progress.preview ?? last.progress.preview;
        if (preview) kept = { ...event, progress: { ...event.progress, preview } };
      }
    }
    this.kept.push(kept);
    for (const l of this.listeners) l(event);
    if (isFinal(event)) {
      this.final = event;
      this.listeners.clear();
      this.resolveFinal(event);
    }
  }

  /** Calls `listener` with every kept event, then each new one; returns the unsubscribe. */
  subscribe(listener: (event: JobEvent) => void): () => void {
    for (const e of [...this.kept]) listener(e);
    if (!this.final) this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The same, as an async iterator that ends after the final event. */
  async *[Symbol.asyncIterator](): AsyncGenerator<JobEvent, void, undefined> {
    const pending: JobEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe((e) => {
      pending.push(e);
      wake?.();
    });
    try {
      for (;;) {
        const next = pending.shift();
        if (next) {
          yield next;
          if (isFinal(next)) return;
          continue;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
    }
  }
}
