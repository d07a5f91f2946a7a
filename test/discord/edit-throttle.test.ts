// The progress-edit throttle, on fake time: at most one edit per 2 s per message, latest state
// wins, the final state is never dropped.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EditThrottle } from '../../src/discord/edit-throttle.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

function recorder(options: { latencyMs?: number; failOn?: string } = {}) {
  const sent: { value: string; at: number }[] = [];
  const send = async (value: string) => {
    sent.push({ value, at: Date.now() });
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
    if (value === options.failOn) throw new Error(`failed ${value}`);
  };
  return { sent, send };
}

describe('EditThrottle', () => {
  it('sends the first state at once', async () => {
    const { sent, send } = recorder();
    const t = new EditThrottle(send);
    t.push('a');
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([{ value: 'a', at: 0 }]);
  });

  it('folds states that arrive within 2 s into the latest', async () => {
    const { sent, send } = recorder();
    const t = new EditThrottle(send);
    t.push('a');
    await vi.advanceTimersByTimeAsync(500);
    t.push('b');
    t.push('c');
    await vi.advanceTimersByTimeAsync(500);
    t.push('d');
    await vi.advanceTimersByTimeAsync(5000);
    expect(sent).toEqual([
      { value: 'a', at: 0 },
      { value: 'd', at: 2000 },
    ]);
  });

  it('sends the final state after the interval, replacing pending progress, and resolves then', async () => {
    const { sent, send } = recorder();
    const t = new EditThrottle(send);
    t.push('a');
    await vi.advanceTimersByTimeAsync(100);
    t.push('b');
    let resolved = false;
    const done = t.final('final').then(() => {
      resolved = true;
    });
    t.push('late progress');
    await vi.advanceTimersByTimeAsync(1000);
    expect(resolved).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    expect(sent).toEqual([
      { value: 'a', at: 0 },
      { value: 'final', at: 2000 },
    ]);
  });

  it('never overlaps two edits: a slow edit delays the next one', async () => {
    const { sent, send } = recorder({ latencyMs: 3000 });
    const t = new EditThrottle(send);
    t.push('a');
    await vi.advanceTimersByTimeAsync(100);
    t.push('b');
    await vi.advanceTimersByTimeAsync(2500);
    expect(sent.map((s) => s.value)).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toEqual([
      { value: 'a', at: 0 },
      { value: 'b', at: 3000 },
    ]);
  });

  it('keeps at least 2 s between edits over a long burst, and ends on the final state', async () => {
    const { sent, send } = recorder();
    const t = new EditThrottle(send);
    for (let i = 0; i < 100; i++) {
      t.push(`step ${i}`);
      await vi.advanceTimersByTimeAsync(100);
    }
    await Promise.all([t.final('done'), vi.advanceTimersByTimeAsync(2000)]);
    const gaps = sent.slice(1).map((s, i) => s.at - (sent[i] as { at: number }).at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(2000);
    expect(sent.length).toBeLessThanOrEqual((100 * 100) / 2000 + 2);
    expect(sent.at(-1)?.value).toBe('done');
  });

  it('reports a failed progress edit and goes on; a failed final edit rejects', async () => {
    const { sent, send } = recorder({ failOn: 'a' });
    const errors: unknown[] = [];
    const t = new EditThrottle(send, { onError: (e) => errors.push(e) });
    t.push('a');
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toHaveLength(1);
    const failing = new EditThrottle(recorder({ failOn: 'final' }).send);
    const result = failing.final('final').catch((e: Error) => e.message);
    await vi.advanceTimersByTimeAsync(0);
    expect(await result).toBe('failed final');
    t.push('b');
    await vi.advanceTimersByTimeAsync(2000);
    expect(sent.map((s) => s.value)).toEqual(['a', 'b']);
  });

  it('counts the reply written before it took over', async () => {
    const { sent, send } = recorder();
    const t = new EditThrottle(send, { lastSentAt: 0 });
    await vi.advanceTimersByTimeAsync(500);
    t.push('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toEqual([{ value: 'a', at: 2000 }]);
  });

  it('uses the interval it is given', async () => {
    const { sent, send } = recorder();
    const t = new EditThrottle(send, { intervalMs: 500 });
    t.push('a');
    t.push('b');
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toEqual([
      { value: 'a', at: 0 },
      { value: 'b', at: 500 },
    ]);
  });
});
