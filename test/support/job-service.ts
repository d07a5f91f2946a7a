// A JobService as the tests build it: local or Redis limiters, a generous quota, one engine.
import type { Db } from '../../src/db/client.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
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

/** A 64×64 request with a fixed seed: cheap on any engine, its cost the same in every test. */
export const smallRequest = (prompt: string, over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt,
  seed: 1,
  width: 64,
  height: 64,
  ...over,
});

/** Polls `cond` until it holds; throws after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
