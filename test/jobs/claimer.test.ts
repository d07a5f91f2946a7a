// The claimer's passes when the database fails under them: every caller, the one that started a
// pass and the ones that joined it, gets a settled promise (a rejection nobody handled would end
// the process: service.ts chains `.then` on a joined pass), and the failure is logged once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Claimer } from '../../src/jobs/claimer.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';

describe('a claim pass on a database that fails', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase('pglite');
    await t.close(); // every statement now fails
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('settles for the caller and for those who joined it, and logs the failure', async () => {
    const warnings: string[] = [];
    const claimer = new Claimer({
      db: t.db,
      instanceId: 'me',
      log: { info: () => {}, warn: (_o, msg) => void warnings.push(msg), error: () => {} },
      free: () => 1,
      hearsNews: () => true,
      stopped: () => false,
      take: () => {
        throw new Error('nothing can be claimed from a closed database');
      },
      letGo: () => {},
    });
    const first = claimer.claim('news');
    const joined = claimer.claim('room'); // joins the pass waiting to begin
    const outcomes = await Promise.allSettled([first, joined, joined.then(() => 'after')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(warnings).toEqual(['could not claim a job from the queue']);
  });
});
