// The job service alone: quota reserve, admission, fair queue, run, commit, with an engine that
// does nothing (it answers at once with a 512×512 job's base latent, as a real one is stored).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type Database, openDatabase } from '../src/db/client.ts';
import type { GenerationResult, UpscaleResult } from '../src/diffusion/pipeline.ts';
import type { GenerationRequest } from '../src/diffusion/request.ts';
import type { EngineRunOptions } from '../src/engine/engine.ts';
import { createLimiters } from '../src/jobs/limiters.ts';
import { type EngineLike, JobService } from '../src/jobs/service.ts';
import { benchRequest } from './job.ts';
import { progress } from './progress.ts';

const png = Buffer.alloc(1024);
const WARM_UP_JOBS = 200;

/**
 * A latent as a real one is stored: values that do not compress (zeros did, to a few bytes, so
 * the database never wrote the 64 KB a real job writes). Made once: an engine makes it elsewhere.
 */
const latents = new Map<string, Float32Array>();
function latentOf(h: number, w: number): Float32Array {
  const key = `${h}x${w}`;
  let data = latents.get(key);
  if (!data) {
    // (copied into a buffer of its own: a Buffer may sit inside a shared pool)
    data = new Float32Array(new Uint8Array(randomBytes(4 * 4 * h * w)).buffer);
    latents.set(key, data);
  }
  return data;
}

/** An engine with no work: what is measured is the service and its database. */
class NoOpEngine implements EngineLike {
  readonly size = 1;
  async generate(request: GenerationRequest, options: EngineRunOptions): Promise<GenerationResult> {
    const [h, w] = [request.height / 8, request.width / 8];
    const image = { png, width: request.width, height: request.height, infotext: 'bench' };
    return {
      base: { ...image, latent: { data: latentOf(h, w), shape: [4, h, w] } },
      upscaled: (options.denoises ?? [request.denoise]).map((denoise) => ({ ...image, denoise })),
      timings: { baseMs: 0, hiresMs: [0], decodeMs: 0 },
    };
  }
  async upscale(): Promise<UpscaleResult> {
    throw new Error('not used by the bench');
  }
}

export interface ThroughputResult {
  database: 'pglite' | 'postgres';
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** This process's CPU time (user + system) a job: steadier than the wall on a busy machine. */
  cpuMsPerJob?: number;
  /** With several rounds: each one's jobs/s; the figures above are the median round's. */
  rounds?: number[];
}

/**
 * `rounds` rounds of measureThroughput, each on a fresh database: the median round (by jobs/s),
 * with every round's jobs/s. One round on a shared machine moved by a third from minute to minute.
 */
export async function measureRounds(
  kind: 'pglite' | 'postgres',
  o: Parameters<typeof measureThroughput>[1] & { rounds: number },
): Promise<ThroughputResult> {
  const results: ThroughputResult[] = [];
  for (let r = 0; r < o.rounds; r++) {
    progress(`job service on ${kind}: round ${r + 1}/${o.rounds}`);
    results.push(await measureThroughput(kind, o));
  }
  const sorted = [...results].sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as ThroughputResult;
  return { ...median, rounds: results.map((r) => r.jobsPerSecond) };
}

async function open(
  kind: 'pglite' | 'postgres',
  pgUrl: string,
): Promise<Database & { drop(): Promise<void> }> {
  if (kind === 'pglite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'hiresbot-bench-pglite-'));
    const db = await openDatabase({ pgliteDir: dir });
    return { ...db, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `bench_${randomBytes(5).toString('hex')}`;
  const admin = postgres(pgUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(pgUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.href });
  return {
    ...db,
    drop: async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** `jobs` jobs from `users` users, at most `inFlight` submitted and unfinished at once. */
export async function measureThroughput(
  kind: 'pglite' | 'postgres',
  o: { jobs: number; users: number; inFlight: number; pgUrl: string },
): Promise<ThroughputResult> {
  const database = await open(kind, o.pgUrl);
  const limiters = createLimiters({ perUser: o.inFlight, queueMax: o.inFlight * 2, namespace: 'bench' });
  const service = new JobService({
    db: database.db,
    engine: new NoOpEngine(),
    limiters,
    quota: { dailyUnits: 1e9, resetHourUtc: 0 },
    // as the bot runs it (src/services.ts): new jobs are announced, not only polled for
    listen: database.listen,
    jobTimeoutMs: 60_000,
  });
  await service.start();
  try {
    const request = benchRequest();
    const one = async (i: number) => {
      const handle = await service.submit({
        kind: 'imagine',
        guildId: 'bench-guild',
        channelId: 'bench-channel',
        userId: `user-${i % o.users}`,
        request: { ...request, seed: i },
      });
      const end = await handle.result;
      if (end.type !== 'done') throw new Error(`bench job ${i} ended ${end.type}`);
    };
    // jobs first: connections, prepared statements, JIT, and a history the planner has
    // statistics of, as a running bot's database has (PGlite's upkeep at start and hourly;
    // PostgreSQL's autovacuum): without them every claim read every finished job
    for (let i = 0; i < WARM_UP_JOBS; i++) await one(o.jobs + i);
    if (database.maintenance) await database.maintenance({ all: true });
    else await database.db.execute(sql`analyze`);
    let next = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const worker = async () => {
      while (next < o.jobs) {
        const i = next++;
        if (i % 50 === 0) progress(`job service on ${kind}: ${i}/${o.jobs} jobs`);
        await one(i);
      }
    };
    await Promise.all(Array.from({ length: o.inFlight }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuMsPerJob = (cpu.user + cpu.system) / 1000 / o.jobs;
    return { database: kind, jobs: o.jobs, seconds, jobsPerSecond: o.jobs / seconds, cpuMsPerJob };
  } finally {
    await service.stop();
    await limiters.close();
    await database.close();
    await database.drop();
  }
}
