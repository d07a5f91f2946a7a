/**
 * Jobs per second through the PostgreSQL queue: submit (admission, quota reservation + job row in
 * one transaction, position) → claim (the fair FOR UPDATE SKIP LOCKED pick) → settle (status +
 * ledger in one transaction), with an engine that does nothing, so the database and the queue's
 * own code are all that is measured. One gateway service submits; N worker services, each with
 * its own process, connection pool and LISTEN connection, claim and settle. Three figures: submits alone (no worker up), the workers draining that
 * queue (claim → settle), and a steady flow (submit → claim → settle, the workers up).
 *
 *   npx tsx bench/queue-throughput.ts [--jobs 2000] [--workers 4] [--slots 4] [--submitters 16] [--users 50]
 *
 * BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) names a server where a
 * fresh database is created for the run and dropped after it.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { openDatabase } from '../src/db/client.ts';
import type { GenerationResult } from '../src/diffusion/pipeline.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../src/diffusion/request.ts';
import type { EngineRunOptions, UpscaleResult } from '../src/engine/engine.ts';
import { createLimiters } from '../src/jobs/limiters.ts';
import { type EngineLike, JobService } from '../src/jobs/service.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    workers: { type: 'string', default: '4' },
    slots: { type: 'string', default: '4' },
    submitters: { type: 'string', default: '16' },
    users: { type: 'string', default: '50' },
    /** Internal: this process is one worker on the database at this URL. */
    'worker-of': { type: 'string' },
  },
});
const JOBS = Number(values.jobs);
const WORKERS = Number(values.workers);
const SLOTS = Number(values.slots);
const SUBMITTERS = Number(values.submitters);
const USERS = Number(values.users);
// (no worker, say, would leave the drain waiting for ever)
for (const name of ['jobs', 'workers', 'slots', 'submitters', 'users'] as const) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`queue-throughput: --${name} must be a whole number from 1 (got ${values[name]})`);
    process.exit(2);
  }
}

const png = Buffer.alloc(16);
/** Answers at once: the queue is what is measured. */
class NoopEngine implements EngineLike {
  readonly size = SLOTS;
  async generate(request: GenerationRequest, options: EngineRunOptions): Promise<GenerationResult> {
    return {
      base: {
        png,
        width: request.width,
        height: request.height,
        infotext: '',
        latent: { data: new Float32Array(4 * 8 * 8), shape: [4, 8, 8] },
      },
      upscaled: (options.denoises ?? [request.denoise]).map((denoise) => ({
        png,
        width: 1,
        height: 1,
        infotext: '',
        denoise,
      })),
      timings: { baseMs: 0, hiresMs: [0], decodeMs: 0 },
    };
  }
  async upscale(): Promise<UpscaleResult> {
    throw new Error('not used');
  }
}

/**
 * A job service on the bench database: a worker's (the no-op engine's SLOTS) or, with no engine,
 * the gateway's (it submits and claims nothing).
 */
async function startService(url: string, engine?: EngineLike) {
  const database = await openDatabase({ url });
  const limiters = createLimiters({ perUser: JOBS, queueMax: JOBS });
  const service = new JobService({
    db: database.db,
    ...(engine ? { engine } : {}),
    limiters,
    quota: { dailyUnits: 0, resetHourUtc: 0 },
    concurrency: engine ? SLOTS : 0,
    listen: database.listen,
    jobTimeoutMs: 60_000,
  });
  await service.start();
  return {
    service,
    async stop() {
      await service.stop();
      await limiters.close();
      await database.close();
    },
  };
}

/** A worker process: claims and settles until its parent stops it. */
async function worker(url: string): Promise<void> {
  const running = await startService(url, new NoopEngine());
  process.send?.('ready');
  process.once('SIGTERM', async () => {
    await running.stop();
    process.exit(0);
  });
}

/** Starts a worker process, as a worker host runs one. */
function startWorker(url: string): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), ['--worker-of', url, '--slots', String(SLOTS)], {
    execArgv: ['--import', 'tsx'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`a worker exited (${code}) before it was ready`)));
  });
}

async function main(): Promise<void> {
  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const name = `hiresbot_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const children: ChildProcess[] = [];
  let gateway: Awaited<ReturnType<typeof startService>> | undefined;
  const check = postgres(url.href, { max: 1, onnotice: () => {} });
  const doneCount = async () => {
    const [row] = await check`select count(*)::int as n from jobs where status = 'done'`;
    return row?.n as number;
  };
  const untilDone = async (n: number) => {
    while ((await doneCount()) < n) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    gateway = await startService(url.href);
    const submitter = gateway.service;
    const request: GenerationRequest = {
      ...DEFAULT_REQUEST,
      prompt: 'bench',
      seed: 0,
      width: 64,
      height: 64,
    };
    /** Submits `count` jobs through the gateway, SUBMITTERS at a time; resolves with the seconds taken. */
    const submitAll = async (count: number): Promise<number> => {
      let next = 0;
      const begun = performance.now();
      const submitOne = async () => {
        for (let n = next++; n < count; n = next++) {
          await submitter.submit({
            kind: 'imagine',
            guildId: 'g',
            channelId: 'c',
            userId: `u${n % USERS}`,
            request: { ...request, seed: n },
          });
        }
      };
      await Promise.all(Array.from({ length: SUBMITTERS }, submitOne));
      return (performance.now() - begun) / 1000;
    };
    const rate = (n: number, seconds: number) =>
      `${(n / seconds).toFixed(0)}/s (${n} in ${seconds.toFixed(2)} s)`;

    // 1. the queue fills with no worker up, then the workers drain it
    const submitSeconds = await submitAll(JOBS);
    children.push(...(await Promise.all(Array.from({ length: WORKERS }, () => startWorker(url.href)))));
    await untilDone(JOBS);
    // by the database's clock, from the first claim: a worker process takes seconds to start
    const [drain] =
      await check`select extract(epoch from max(finished_at) - min(started_at))::float as s from jobs`;
    const drainSeconds = drain?.s as number;

    // 2. steady flow: the workers take jobs as they are submitted
    const begun = performance.now();
    await submitAll(JOBS);
    await untilDone(2 * JOBS);
    const flowSeconds = (performance.now() - begun) / 1000;

    const [ledger] = await check`select count(*)::int as n from usage_ledger where kind = 'commit'`;
    process.stdout.write(
      `PostgreSQL, ${USERS} users, ${SUBMITTERS} submitters, ${WORKERS} workers × ${SLOTS} slots, no-op engine:\n` +
        `  submit (admission, reserve + row, position):   ${rate(JOBS, submitSeconds)}\n` +
        `  claim → settle, draining a queue of ${JOBS}:     ${rate(JOBS, drainSeconds)}\n` +
        `  submit → claim → settle, steady flow:         ${rate(JOBS, flowSeconds)}\n` +
        `  (${ledger?.n} commits in the ledger for ${2 * JOBS} jobs)\n`,
    );
  } finally {
    await Promise.all(
      children.map((c) => {
        c.kill('SIGTERM');
        return new Promise((r) => c.once('exit', r));
      }),
    );
    await check.end();
    await gateway?.stop();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

if (values['worker-of']) await worker(values['worker-of']);
else await main();
