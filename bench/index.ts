// `npm run bench [-- --full] [-- --torch] [-- --session-options] [-- --only overhead|gpu]`: our overhead per step, the
// stages of a 512→1024 job, PNG encode, the engine's event loop and memory, the job service's
// throughput; with --full the full-size model, with --torch the side by side with PyTorch and
// onnxruntime-python. Prints a table and writes bench/results.json (see README "Benchmarks").
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { IMPORTER_VERSION } from '../src/checkpoint/import.ts';
import { measureEngineLoop } from './engine-loop.ts';
import { runFull } from './full.ts';
import { gpuOnly } from './gpu-cli.ts';
import { checkedGpuResult, gpuTable } from './gpu-summary.ts';
import { measureRounds, type ThroughputResult } from './job-throughput.ts';
import { measureOverhead } from './overhead.ts';
import { measurePng } from './png.ts';
import { progressDone } from './progress.ts';
import { checkFull } from './saved-results.ts';
import { overheadTable, summarize } from './summary.ts';

/** A bad flag or file: one line and exit 2, as the CLI does, not a stack trace. */
function usage(message: string): never {
  console.error(`npm run bench: ${message}`);
  process.exit(2);
}

const { values: flags } = (() => {
  try {
    return parseBenchArgs();
  } catch (err) {
    return usage((err as Error).message);
  }
})();
// each count's largest sensible value: onnxruntime asked for 100 000 threads hangs (a kernel-rate
// measurement with --threads 100000 was still starting after 5 minutes), and a phase of a million
// warm steps would outlast any --budget-s, which is checked only as a phase starts
const MAX_COUNT = {
  jobs: 999_999,
  'job-rounds': 999_999,
  'engine-jobs': 999_999,
  threads: 256,
  'overhead-jobs': 999_999,
  'warm-steps': 1000,
  'budget-s': 86_400,
} as const;
for (const [name, max] of Object.entries(MAX_COUNT) as [keyof typeof MAX_COUNT, number][]) {
  const value = flags[name];
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1 || Number(value) > max)
    usage(`--${name} must be a whole number from 1 to ${max} (got "${value}")`);
}

function parseBenchArgs() {
  return parseArgs({
    options: {
      full: { type: 'boolean', default: false },
      torch: { type: 'boolean', default: false },
      'session-options': { type: 'boolean', default: false },
      // one step per latent side profiled by operator (onnxruntime's profiler; GPU timestamps on webgpu)
      profile: { type: 'boolean', default: false },
      jobs: { type: 'string', default: '300' },
      // rounds of the job service per database, each on a fresh one: the median is reported
      'job-rounds': { type: 'string', default: '3' },
      'engine-jobs': { type: 'string', default: '50' },
      threads: { type: 'string', default: '2' },
      // the full-size model's providers, e.g. cuda,cpu on a GPU machine
      providers: { type: 'string', default: process.env.EXECUTION_PROVIDERS ?? 'cpu' },
      checkpoint: { type: 'string', default: 'data/bench/random-sd15.safetensors' },
      // one folder per importer version: a graph change is imported afresh
      model: { type: 'string', default: `data/bench/sd15-fp32-v${IMPORTER_VERSION}` },
      // more imported folders timed at 64×64 beside ours, as DIR:LABEL (e.g. an older import)
      also: { type: 'string', multiple: true, default: [] },
      'export-dir': { type: 'string', default: 'data/bench/torch-export' },
      pg: {
        type: 'string',
        default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      },
      // default bench/results.json (bench/results-gpu.json for --only gpu)
      out: { type: 'string' },
      // print the table of an earlier results.json again, measuring nothing
      from: { type: 'string' },
      // `overhead`: only our per-step overhead (its table; nothing written); --overhead-jobs: jobs timed
      only: { type: 'string' },
      'overhead-jobs': { type: 'string', default: '3' },
      // `gpu`: the full-size model on --providers beside PyTorch on the same GPU (bench/gpu.ts)
      dtypes: { type: 'string', default: 'fp16,fp32' },
      layouts: { type: 'string', default: 'NHWC,NCHW' },
      'warm-steps': { type: 'string', default: '5' },
      latents: { type: 'string', default: '64,128' },
      'budget-s': { type: 'string', default: '1200' },
    },
    strict: true,
  });
}

async function reachable(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

if (flags.from) {
  let table: string;
  try {
    const saved: Parameters<typeof summarize>[0] = JSON.parse(readFileSync(flags.from, 'utf8'));
    if (saved && typeof saved === 'object' && 'gpu' in saved) {
      console.log(gpuTable(checkedGpuResult((saved as { gpu: unknown }).gpu)));
      process.exit(0);
    }
    if (!saved?.machine || !saved.overhead) throw new Error('not a results file of npm run bench');
    const { machine, overhead, png, engine, jobService, full } = saved;
    checkFull(full);
    try {
      table = summarize({ machine, overhead, png, engine, jobService, full }).table;
    } catch (err) {
      // a part missing or of the wrong shape (an older or hand-edited file): one line, not a stack
      throw new Error(`not a complete results file of npm run bench (${(err as Error).message})`);
    }
  } catch (err) {
    usage(`--from ${flags.from}: ${(err as Error).message.split('\n')[0]}`);
  }
  console.log(table);
  process.exit(0);
}

if (flags.only !== undefined && flags.only !== 'overhead' && flags.only !== 'gpu') {
  console.error(`--only: the parts that run alone are "overhead" and "gpu" (got "${flags.only}")`);
  process.exit(2);
}
if (flags.only === 'gpu') await gpuOnly(flags, usage);

const started = new Date();
const load0 = loadavg();
const overhead = await measureOverhead(Number(flags['overhead-jobs']));
if (flags.only === 'overhead') {
  progressDone();
  console.log(overheadTable(overhead));
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`\nload average: start ${load(load0)}, end ${load(loadavg())}`);
  process.exit(0);
}
const png = await measurePng();
const engine = await measureEngineLoop(Number(flags['engine-jobs']));
const jobService: (ThroughputResult | { database: string; skipped: string })[] = [];
const sizing = {
  jobs: Number(flags.jobs),
  rounds: Number(flags['job-rounds']),
  users: 10,
  inFlight: 10,
  pgUrl: flags.pg,
};
jobService.push(await measureRounds('pglite', sizing));
if (await reachable(flags.pg)) jobService.push(await measureRounds('postgres', sizing));
else jobService.push({ database: 'postgres', skipped: `no PostgreSQL at ${flags.pg} (set --pg)` });
const full =
  flags.full || flags.torch || flags.profile
    ? await runFull({
        checkpoint: flags.checkpoint,
        modelDir: flags.model,
        exportDir: flags['export-dir'],
        threads: Number(flags.threads),
        providers: flags.providers.split(',').map((p) => p.trim()),
        sessionOptions: flags['session-options'],
        also: flags.also.map((a) => {
          const at = a.lastIndexOf(':');
          return at > 0 ? { dir: a.slice(0, at), label: a.slice(at + 1) } : { dir: a, label: a };
        }),
        torch: flags.torch,
        profile: flags.profile,
      })
    : { skipped: 'the full-size model runs with --full (and the side by side with --torch)' };
progressDone();

const machine = {
  date: started.toISOString(),
  cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  node: process.version,
  // other work on the machine moves every figure: the load average beside them says how much
  loadAverage: { start: load0.map((l) => +l.toFixed(2)), end: loadavg().map((l) => +l.toFixed(2)) },
  seconds: (Date.now() - started.getTime()) / 1000,
};
const { table, results } = summarize({ machine, overhead, png, engine, jobService, full });
console.log(table);
const outFile = flags.out ?? path.join(import.meta.dirname, 'results.json');
writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwrote ${outFile}`);
