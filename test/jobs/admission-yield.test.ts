// In-process admission (no Redis) yields to the event loop with immediates, not zero-delay
// timeouts: each of those waits at least 1 ms in Node, and Bottleneck's local store yielded six
// times per admitted job (bottleneck-yield.ts). The limits themselves behave as before.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { admitJob } from '../../src/jobs/admission.ts';
import { createLimiters, type Limiters } from '../../src/jobs/limiters.ts';

describe('in-process admission', () => {
  let limiters: Limiters | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await limiters?.close();
  });

  it('admits and refuses without a zero-delay timeout from the local store', async () => {
    limiters = createLimiters({ perUser: 2, queueMax: 3, namespace: 'yield-test' });
    const original = globalThis.setTimeout;
    let zeroFromStore = 0;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      if (!ms && /LocalDatastore/.test(new Error().stack ?? '')) zeroFromStore++;
      return original(fn, ms);
    }) as typeof setTimeout);
    const a = await admitJob(limiters, 'g', 'u1');
    const b = await admitJob(limiters, 'g', 'u1');
    // the user's limit: a third job of u1 is refused, one of u2 is admitted, then the queue is full
    await expect(admitJob(limiters, 'g', 'u1')).rejects.toMatchObject({ code: 'user-limit' });
    const c = await admitJob(limiters, 'g', 'u2');
    await expect(admitJob(limiters, 'g', 'u3')).rejects.toMatchObject({ code: 'queue-full' });
    for (const s of [...a, ...b, ...c]) s.release();
    await expect(admitJob(limiters, 'g', 'u3')).resolves.toHaveLength(2);
    expect(zeroFromStore).toBe(0);
  });
});
