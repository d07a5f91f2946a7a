/**
 * At most one edit per interval to one message, never two at once: progress states that arrive
 * faster are folded into the latest (latest wins), and the final state is always sent, after the
 * interval if an edit just went out. Discord's own rate limits still apply on top (discord.js
 * queues and retries on 429); this keeps the bot far below them.
 */

export interface ThrottleTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: ThrottleTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class EditThrottle<T> {
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private pending: { value: T; final: boolean } | undefined;
  private inFlight = false;
  private timer: unknown;
  private finished = false;
  private finalDone: { resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(
    private readonly send: (value: T) => Promise<void>,
    private readonly o: {
      intervalMs?: number;
      /** A failed progress edit is reported here and not retried (the next state replaces it). */
      onError?: (err: unknown) => void;
      timers?: ThrottleTimers;
      /** When the message was last written before the throttle took over (its first reply). */
      lastSentAt?: number;
    } = {},
  ) {
    if (o.lastSentAt !== undefined) this.lastSentAt = o.lastSentAt;
  }

  private get interval(): number {
    return this.o.intervalMs ?? 2000;
  }

  private get timers(): ThrottleTimers {
    return this.o.timers ?? realTimers;
  }

  /** A progress state: sent now if allowed, else kept (replacing any older one) for later. */
  push(value: T): void {
    if (this.finished) return;
    this.pending = { value, final: false };
    this.pump();
  }

  /** The last state: replaces anything pending, is never dropped; resolves once it is sent. */
  final(value: T): Promise<void> {
    if (this.finished) return Promise.reject(new Error('final state already given'));
    this.finished = true;
    this.pending = { value, final: true };
    const done = new Promise<void>((resolve, reject) => {
      this.finalDone = { resolve, reject };
    });
    this.pump();
    return done;
  }

  /** Drops whatever is pending (the message is gone); a pending final is rejected. */
  close(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending?.final) this.finalDone?.reject(new Error('throttle closed before the final edit'));
    this.pending = undefined;
    this.finished = true;
  }

  private pump(): void {
    if (this.inFlight || this.timer !== undefined || !this.pending) return;
    const wait = this.lastSentAt + this.interval - this.timers.now();
    if (wait > 0) {
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    const { value, final } = this.pending;
    this.pending = undefined;
    this.inFlight = true;
    this.lastSentAt = this.timers.now();
    this.send(value).then(
      () => {
        this.inFlight = false;
        if (final) this.finalDone?.resolve();
        this.pump();
      },
      (err: unknown) => {
        this.inFlight = false;
        if (final) this.finalDone?.reject(err);
        else this.o.onError?.(err);
        this.pump();
      },
    );
  }
}
