// One job's event stream, on its own: replay for late subscribers, the final event, iteration.
import { describe, expect, it } from 'vitest';
import { JobChannel } from '../../src/jobs/job-channel.ts';
import type { JobEvent } from '../../src/jobs/types.ts';

const progress = (step: number, preview?: Buffer): JobEvent => ({
  type: 'progress',
  jobId: 'j',
  progress: { pass: 'base', step, total: 5, ...(preview ? { preview } : {}) },
});

describe('JobChannel', () => {
  it('replays only the latest progress to a late subscriber, with the latest preview drawn', () => {
    const c = new JobChannel();
    const drawn = Buffer.from('preview of step 3');
    c.push({ type: 'started', jobId: 'j', attempt: 1 });
    for (let step = 1; step <= 5; step++) c.push(progress(step, step === 3 ? drawn : undefined));
    const seen: JobEvent[] = [];
    c.subscribe((e) => seen.push(e));
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual(progress(5, drawn));
  });

  it('live subscribers get each event as it was sent; the final event closes the stream', async () => {
    const c = new JobChannel();
    const live: JobEvent[] = [];
    c.subscribe((e) => live.push(e));
    c.push(progress(1, Buffer.from('p')));
    c.push(progress(2));
    c.push({ type: 'interrupted', jobId: 'j' });
    c.push(progress(3)); // after the final event: dropped
    expect(live).toEqual([progress(1, Buffer.from('p')), progress(2), { type: 'interrupted', jobId: 'j' }]);
    expect(await c.result).toEqual({ type: 'interrupted', jobId: 'j' });
    const iterated: string[] = [];
    for await (const e of c) iterated.push(e.type);
    expect(iterated).toEqual(['progress', 'interrupted']); // ends by itself
  });
});
