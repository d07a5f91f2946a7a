import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../src/jobs/fair-queue.ts';

const job = (userId: string, n: number) => ({ id: `${userId}${n}`, userId });
const drain = (q: FairQueue<{ id: string; userId: string }>) => {
  const out: string[] = [];
  for (let it = q.shift(); it; it = q.shift()) out.push(it.id);
  return out;
};

describe('FairQueue', () => {
  it('is FIFO for one user', () => {
    const q = new FairQueue();
    for (let i = 1; i <= 3; i++) q.push(job('a', i));
    expect(drain(q)).toEqual(['a1', 'a2', 'a3']);
  });

  it('a user with five queued jobs delays another user’s single job by at most one', () => {
    const q = new FairQueue();
    for (let i = 1; i <= 5; i++) q.push(job('a', i));
    q.push(job('b', 1));
    expect(q.order().map((j) => j.id)).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
    expect(drain(q)).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  it('interleaves users round-robin, a newcomer right after the user whose turn it is', () => {
    const q = new FairQueue();
    for (let i = 1; i <= 3; i++) q.push(job('a', i));
    for (let i = 1; i <= 2; i++) q.push(job('b', i));
    expect(q.shift()?.id).toBe('a1');
    q.push(job('c', 1)); // b is due next; c goes after b, before a's next turn
    expect(q.order().map((j) => j.id)).toEqual(['b1', 'c1', 'a2', 'b2', 'a3']);
    expect(drain(q)).toEqual(['b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('order() predicts shift() exactly, after removals too', () => {
    const q = new FairQueue();
    const pushes = ['a', 'a', 'b', 'c', 'a', 'b', 'd', 'c'];
    pushes.forEach((u, i) => {
      q.push(job(u, i));
    });
    q.shift();
    q.remove('b2');
    q.remove('d6');
    const predicted = q.order().map((j) => j.id);
    expect(drain(q)).toEqual(predicted);
    expect(q.size).toBe(0);
  });

  it('remove returns the item and leaves the rest in order', () => {
    const q = new FairQueue();
    q.push(job('a', 1));
    q.push(job('b', 1));
    q.push(job('a', 2));
    expect(q.remove('b1')?.id).toBe('b1');
    expect(q.remove('zzz')).toBeUndefined();
    expect(drain(q)).toEqual(['a1', 'a2']);
  });
});
