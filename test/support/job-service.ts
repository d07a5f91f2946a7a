// A JobService as the tests build it: local or Redis limiters, a generous quota, one engine.
import type { Db } from '../../src/db/client.ts';
import { createLimiters, type LimiterSettings, type Limiters } from '../../src/jobs/limiters.ts';
import { type EngineLike, JobService, type JobServiceOptions } from '../../src/jobs/service.ts';

export interface TestJobServiceOptions
  extends Partial<Omit<JobServiceOptions, 'db' | 'engine' | 'limiters'>> {
  perUser?: number;
  queueMax?: number;
  redisUrl?: string;
  namespace?: string;
}

export function createTestJobService(
  db: Db,
  engine: EngineLike,
  o: TestJobServiceOptions = {},
): { service: JobService; limiters: Limiters } {
  const { perUser = 5, queueMax = 20, redisUrl, namespace, ...options } = o;
  const limiterSettings: LimiterSettings = {
    perUser,
    queueMax,
    redisUrl,
    ...(namespace ? { namespace } : {}),
  };
  const limiters = createLimiters(limiterSettings);
  const service = new JobService({
    db,
    engine,
    limiters,
    quota: { dailyUnits: 100, resetHourUtc: 0 },
    jobTimeoutMs: 60_000,
    ...options,
  });
  return { service, limiters };
}
