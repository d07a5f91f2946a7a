// A base latent's bytes survive the database exactly, on both databases: every bit pattern a float
// can have (negative zero, NaN payloads, subnormals) and an offset view, through our bytea encoding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLatent } from '../../src/jobs/job-store.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { insertJob, jobRow, saveLatent } from '../support/job-rows.ts';

describe.each(DATABASE_KINDS)('base latents on %s', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(kind);
  });
  afterAll(() => t?.destroy());

  it('come back bit for bit, from a view at an offset', async () => {
    const bits = Uint32Array.from({ length: 4 * 64 * 64 + 1 }, (_, k) => (k * 2654435761) >>> 0);
    bits.set([0x80000000, 0x7fc00001, 0x00000001, 0xff800000, 0], 1);
    const data = new Float32Array(bits.buffer, 4); // skips the first value
    await insertJob(t.db, jobRow('job-1', { status: 'done', owner: 'test' }));
    await saveLatent(t.db, 'job-1', { data, shape: [4, 64, 64] });
    const back = await loadLatent(t.db, 'job-1');
    if (!back) throw new Error('the latent was not stored');
    expect(back.shape).toEqual([4, 64, 64]);
    const got = new Uint32Array(back.data.buffer);
    const want = bits.subarray(1);
    expect(got.length).toBe(want.length);
    const first = got.findIndex((v, i) => v !== want[i]);
    expect(first).toBe(-1);
  });
});
