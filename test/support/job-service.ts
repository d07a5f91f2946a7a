// A JobService as the tests build it: local or Redis limiters, a generous quota, one GPU.
import type { Db } from '../../src/db/client.ts';
import { createLimiters, type LimiterSettings, type Limiters } from '../../src/jobs/limiters.ts';
import { type EngineLike, JobService, type JobServiceOptions } from '../../src/jobs/service.ts';

export interface TestJobServiceOptions
  extends Partial<Omit<JobServiceOptions, 'db' | 'engine' | 'limiters'>> {
  queueMax?: number;
  redisUrl?: string;
  namespace?: string;
}

export function createTestJobService(
  db: Db,
  engine: EngineLike,
  o: TestJobServiceOptions = {},
): { service: JobService; limiters: Limiters } {
  const perUser = o.perUser ?? 5;
  const limiterSettings: LimiterSettings = {
    perUser,
    queueMax: o.queueMax ?? 20,
    gpuWorkers: 1,
    redisUrl: o.redisUrl,
    ...(o.namespace ? { namespace: o.namespace } : {}),
  };
  const limiters = createLimiters(limiterSettings);
  const service = new JobService({
    db,
    engine,
    limiters,
    quota: o.quota ?? { dailyUnits: 100, resetHourUtc: 0 },
    perUser,
    gpuWorkers: 1,
    jobTimeoutMs: o.jobTimeoutMs ?? 60_000,
    ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
    ...(o.staleMs ? { staleMs: o.staleMs } : {}),
  });
  return { service, limiters };
}
