/**
 * Bottleneck limiters by key (one per user, or the one queue limiter), made on first use.
 *
 * A limiter holding no slot is dropped after `idleMs`. On Redis each limiter heartbeats every
 * 5 s for as long as it lives, so keeping every user's for a day (Bottleneck.Group's timeout)
 * cost 100 Redis calls a second for 500 users who had long gone. Bottleneck.Group could not
 * simply be given a short timeout: its expiry is the TTL of the Redis keys, counted from the
 * last admission, so a job waiting longer than that would lose its slot. Here a limiter's life
 * follows the slots this process holds, and the Redis keys keep their own, longer, TTL.
 *
 * A limiter that Redis left unusable (its start-up failed, or a job left waiting on it by a
 * call that gave up) is replaced; the old one lives on until its held slots are
 * released, since a slot is freed through the limiter that granted it.
 */
import type Bottleneck from 'bottleneck';

interface Entry {
  limiter: Bottleneck;
  /** Set when the limiter's start-up (connect, register with Redis) failed: it never recovers. */
  broken: boolean;
  /** Slots held plus calls in progress; the limiter is idle at 0. */
  busy: number;
  idleTimer?: NodeJS.Timeout | undefined;
}

export class LimiterPool {
  private readonly entries = new Map<string, Entry>();
  private readonly retiring = new Set<Bottleneck>();
  private closed = false;

  constructor(
    private readonly make: (key: string) => Bottleneck,
    /** Drop a limiter this long after its last slot was released; Infinity keeps it. */
    private readonly idleMs: number,
  ) {}

  /** The key's limiter if one is live (none is made). */
  current(key: string): Bottleneck | undefined {
    return this.entries.get(key)?.limiter;
  }

  /** Runs `fn` with the key's limiter, which stays while `fn` runs. */
  run<T>(key: string, fn: (limiter: Bottleneck) => Promise<T>): Promise<T> {
    return this.hold(key, fn, () => false).then(({ result }) => result);
  }

  /**
   * Runs `fn` with the key's limiter; when `holding(result)`, the limiter also stays until the
   * returned `done` is called (the slot it granted is released).
   */
  async hold<T>(
    key: string,
    fn: (limiter: Bottleneck) => Promise<T>,
    holding: (result: T) => boolean,
  ): Promise<{ result: T; done: () => void }> {
    const entry = this.checkout(key);
    let held = false;
    try {
      const result = await fn(entry.limiter);
      held = holding(result);
      let released = false;
      const done = () => {
        if (released) return;
        released = true;
        this.checkin(key, entry);
      };
      return { result, done };
    } catch (err) {
      // A job left waiting on Redis (for the connection, or stranded in the local queue by a
      // failed command) would take a slot once Redis is back and make later calls wait behind
      // it: start afresh, and let the old limiter drop it.
      const { RECEIVED, QUEUED, RUNNING } = entry.limiter.counts();
      if (RECEIVED + QUEUED + RUNNING > 0) this.renew(key, entry);
      throw err;
    } finally {
      if (!held) this.checkin(key, entry);
    }
  }

  private checkout(key: string): Entry {
    if (this.closed) throw new Error('the admission limiters are closed');
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { limiter: this.start(key), broken: false, busy: 0 };
      this.entries.set(key, entry);
    } else if (entry.broken) {
      this.renew(key, entry);
    }
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    entry.busy++;
    return entry;
  }

  private checkin(key: string, entry: Entry): void {
    entry.busy--;
    if (entry.busy > 0 || this.closed || !Number.isFinite(this.idleMs)) return;
    entry.idleTimer = setTimeout(() => {
      if (entry.busy > 0 || this.entries.get(key) !== entry) return;
      this.entries.delete(key);
      void this.retire(entry.limiter);
    }, this.idleMs);
    entry.idleTimer.unref();
  }

  private start(key: string): Bottleneck {
    const limiter = this.make(key);
    // Also keeps a failed start-up from being an unhandled rejection.
    limiter.ready().catch(() => {
      const entry = this.entries.get(key);
      if (entry?.limiter === limiter) entry.broken = true;
    });
    return limiter;
  }

  private renew(key: string, entry: Entry): void {
    void this.retire(entry.limiter);
    entry.limiter = this.start(key);
    entry.broken = false;
  }

  /** Drops what waits, keeps what runs (held slots) until released, then disconnects. */
  private async retire(limiter: Bottleneck): Promise<void> {
    this.retiring.add(limiter);
    try {
      await limiter.stop({ dropWaitingJobs: true });
    } catch {
      // stopping failed: disconnect anyway
    }
    await this.disconnect(limiter);
  }

  private async disconnect(limiter: Bottleneck): Promise<void> {
    this.retiring.delete(limiter);
    try {
      await limiter.disconnect(false);
    } catch {
      // closing anyway
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...[...this.entries.values()].map((e) => e.limiter), ...this.retiring];
    for (const e of this.entries.values()) clearTimeout(e.idleTimer);
    this.entries.clear();
    for (const limiter of all) await this.disconnect(limiter);
  }
}
