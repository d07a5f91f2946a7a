/**
 * Retries a database step through a blink: exponential backoff from `firstDelayMs`, capped at
 * `maxDelayMs`, for at most `forMs` in all, and not once `stopped()` says the process is going
 * away; an attempt that hangs counts as failed after `attemptMs`. The last error is thrown, with
 * the step's name, when it gives up. A step must therefore be safe to run twice.
 */
export interface RetryOptions {
  /** One attempt that has not answered in this long counts as failed (a hung connection). */
  attemptMs?: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  forMs?: number;
  stopped?: () => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export class RetryGaveUpError extends Error {
  override name = 'RetryGaveUpError';
}

export async function retrying<T>(step: string, fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const first = o.firstDelayMs ?? 100;
  const cap = o.maxDelayMs ?? 5_000;
  const deadline = Date.now() + (o.forMs ?? 300_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTimeout(fn(), o.attemptMs ?? 10_000, step);
    } catch (err) {
      const delay = Math.min(cap, first * 2 ** (attempt - 1));
      if (o.stopped?.() || Date.now() + delay > deadline) {
        throw new RetryGaveUpError(`${step} failed ${attempt} time(s); giving up`, { cause: err });
      }
      o.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step}: no answer in ${ms} ms`)), ms);
  });
  p.catch(() => {}); // an attempt that answers after its timeout is not an unhandled error
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
