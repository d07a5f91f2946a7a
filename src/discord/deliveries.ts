/**
 * The jobs this front end follows, so that a stop can wait (a few seconds at most) for the
 * results ready to go out: a job that finished just before the stop sits in the edit throttle
 * for up to its interval, and its message is recorded after that, while the database is open.
 * Once the job service has stopped, every other job it followed has been let go ('interrupted').
 */
export class Deliveries {
  private readonly pending = new Set<Promise<void>>();

  /** Follows `following` until it settles; returns it unchanged. */
  track<T>(following: Promise<T>): Promise<T> {
    const settled = following.then(
      () => {},
      () => {},
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return following;
  }

  /** Resolves once every tracked job is delivered or let go, or after `timeoutMs`: how many are left. */
  async settle(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all(this.pending), timeout]);
    clearTimeout(timer);
    return this.pending.size;
  }
}
