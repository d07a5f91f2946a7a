// Several bot processes' job services on one database (a fresh one per file), each with a stand-in
// engine, for a test to make as it needs: a guild per test keeps tests apart, and every process
// made is stopped after its test.
import { afterAll, afterEach, beforeAll, vi } from 'vitest';
import type { Limiters } from '../../src/jobs/limiters.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { type DatabaseKind, freshDatabase, type TestDatabase } from './databases.ts';
import { createTestJobService, type TestJobServiceOptions } from './job-service.ts';
import { StandInEngine } from './stand-in-engine.ts';

export function jobProcesses(kind: DatabaseKind, label: string) {
  let t: TestDatabase;
  let made: { service: JobService; limiters: Limiters }[] = [];
  let guild = 0;
  beforeAll(async () => {
    t = await freshDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });
  afterEach(async () => {
    vi.useRealTimers();
    for (const m of made) {
      await m.service.stop();
      await m.limiters.close();
    }
    made = [];
    guild++;
  });
  /** This test's guild. */
  const g = () => `${label}-${kind}-${guild}`;
  return {
    db: () => t.db,
    g,
    /**
     * A process named `name`, made (and `beforeStart` given its service) but not started: heartbeats
     * far apart unless `options` say otherwise, so that only what the test does moves a job.
     */
    make(name: string, options: TestJobServiceOptions = {}) {
      const engine = new StandInEngine();
      const m = createTestJobService(t.db, engine, {
        instanceId: `${name}-${g()}`,
        namespace: `${label}-${name}-${g()}`,
        heartbeatMs: 60_000,
        staleMs: 30_000,
        ...options,
      });
      made.push(m);
      return { ...m, engine };
    },
  };
}
