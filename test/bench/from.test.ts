// `npm run bench -- --from FILE` prints a saved run's table again; a file that is not a complete
// results file (a part missing, a hand edit) is one line and exit 2, never a stack trace.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'hiresbot-bench-from-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sample = () => JSON.parse(readFileSync(path.join(root, 'bench/results.sample.json'), 'utf8'));
const from = (name: string, results: unknown) => {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(results));
  return spawnSync(process.execPath, ['--import', 'tsx', 'bench/index.ts', '--from', file], {
    cwd: root,
    encoding: 'utf8',
  });
};

it('a results file with a part missing or null is one line and exit 2', () => {
  const noEngine = sample();
  delete noEngine.engine;
  const nullStep = sample();
  nullStep.full.torchCuda = {
    device: 'x',
    runs: { fp16: { weights: 'fp16', shapes: { 64: { coldMs: [1], stepMs: null } } } },
  };
  for (const [name, results] of [
    ['no-engine.json', noEngine],
    ['null-step.json', nullStep],
  ] as const) {
    const run = from(name, results);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(
      /^npm run bench: --from .*: not a complete results file of npm run bench \(.*\)\n$/,
    );
  }
  // the sample itself prints
  const ok = from('sample.json', sample());
  expect(ok.status).toBe(0);
  expect(ok.stdout).toContain('ours / PyTorch');
}, 60_000);

it('prints the job service as the median of its rounds with their range, and an older file without rounds as it was', () => {
  const withRounds = sample();
  withRounds.jobService[0] = {
    ...withRounds.jobService[0],
    jobsPerSecond: 210.4,
    rounds: [246.1, 190.2, 210.4],
  };
  const rounds = from('rounds.json', withRounds);
  expect(rounds.status).toBe(0);
  expect(rounds.stdout).toMatch(
    /pglite, jobs\/s \(300 jobs; median of 3 rounds, 190\.2–246\.1\)\s+210\.4\s+≥ 200 jobs\/s: met/,
  );
  const old = from('old.json', sample());
  expect(old.stdout).toMatch(/pglite, jobs\/s \(300 jobs\)\s+28\.5\s+≥ 200 jobs\/s: MISSED \(0\.14×\)/);
});

it("prints a quiet run's arithmetic rows: GFLOPS, their share of the faster kernel rate and the floor, worked out by hand", () => {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/index.ts', '--from', 'bench/results-cpu.sample.json'],
    { cwd: root, encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  // 1606.547 GFLOP (the closed form at 64×64) / 8.685 s (the fastest warm step) = 185.0 GFLOPS,
  // 80.8 % of the faster kernel rate, the convolution's 229.03; 9348.012 / 53.961 s = 173.2, 75.6 %
  expect(run.stdout).toMatch(
    /ours at 64 \/ 128, GFLOPS \(share of the faster\)\s+185 \(81 %\) \/ 173 \(76 %\)/,
  );
  expect(run.stdout).toMatch(/MatMul 2048² \/ 3×3 conv, GFLOPS\s+173 \/ 229/);
  // 1606.547 / 8.868 s and / 11.039 s; 1606.547 / 229.03 / 8.868 = 0.791
  expect(run.stdout).toMatch(/onnxruntime-python \/ PyTorch at 64, GFLOPS\s+181 \/ 146/);
  expect(run.stdout).toMatch(
    /if all of ours ran at the faster kernel rate\s+0\.79\s+the lowest this ratio can go/,
  );
  expect(run.stdout).toMatch(/MultiHeadAttention \(32 kernels\)\s+1659\.4\s+20 %/);
});

it('refuses arithmetic, kernel rates, profiles and failures that no run writes: one line, exit 2', () => {
  const cpu = () => JSON.parse(readFileSync(path.join(root, 'bench/results-cpu.sample.json'), 'utf8'));
  // biome-ignore lint/suspicious/noExplicitAny: hand edits of a parsed results file, as a user's would be
  const edits: [string, (r: { full: Record<string, any> }) => void, RegExp][] = [
    [
      'peak-zero',
      (r) => (r.full.compute.kernelRates.gflops = 0),
      /full\.compute\.kernelRates: needs positive gflops/,
    ],
    ['peak-text', (r) => (r.full.compute.kernelRates = 'fast'), /full\.compute\.kernelRates/],
    [
      'gflop-negative',
      (r) => (r.full.compute.gflop['64'].total = -5),
      /full\.compute\.gflop\.64\.total: not a positive number/,
    ],
    ['gflop-text', (r) => (r.full.compute.gflop = 'abc'), /full\.compute\.gflop: not an object/],
    ['profile-object', (r) => (r.full.profile = {}), /full\.profile: not a list/],
    [
      'profile-no-kernel-ms',
      (r) => delete r.full.profile[0].kernelMs,
      /full\.profile: entry 0 needs finite stepMs and kernelMs/,
    ],
    [
      'profile-no-latent',
      (r) => delete r.full.profile[0].latent,
      /full\.profile: entry 0 has no whole latent side/,
    ],
    [
      'profile-op-unnamed',
      (r) => delete r.full.profile[0].ops[0].op,
      /full\.profile: entry 0 has an op without a name/,
    ],
    [
      'profile-source',
      (r) => (r.full.profile[0].source = 'tpu'),
      /full\.profile: entry 0 has an unknown source/,
    ],
    ['failed-text', (r) => (r.full.failed = 'oops'), /full\.failed: not a map of phases to reasons/],
  ];
  edits.push(
    [
      'steps-text',
      (r) => (r.full.ours.shapes[0].stepsMs = ['x', 'y']),
      /full\.ours: a step time that is not a positive number of ms/,
    ],
    ['steps-zero', (r) => (r.full.ours.shapes[0].stepsMs = [0, 0]), /full\.ours: a step time/],
    ['load-text', (r) => (r.full.ours.loadMs = 'abc'), /full\.ours\.loadMs: not a time/],
    [
      'ort-zero',
      (r) => (r.full.torch.ort['64'] = [0, 0, 0, 0]),
      /full\.torch\.ort\.64: not a list of step times/,
    ],
    ['failed-list', (r) => (r.full.failed = ['boom']), /full\.failed: not a map/],
    ['peak-threads', (r) => (r.full.compute.kernelRates.threads = 0), /full\.compute\.kernelRates/],
    ['gflop-huge', (r) => (r.full.compute.gflop['64'].total = 1e308), /full\.compute\.gflop\.64\.total/],
    [
      'kernel-sum',
      (r) => (r.full.profile[0].kernelMs = 1),
      /full\.profile: entry 0's kernelMs is not the sum of its ops' ms/,
    ],
  );
  for (const [name, edit, message] of edits) {
    const results = cpu();
    edit(results);
    const run = from(`${name}.json`, results);
    expect(run.status, name).toBe(2);
    expect(run.stderr, name).toMatch(new RegExp(`^npm run bench: --from .*: ${message.source}.*\\n$`));
  }
  // a GPU file's profile is checked the same way
  const gpu = JSON.parse(readFileSync(path.join(root, 'bench/results-gpu.sample.json'), 'utf8'));
  gpu.gpu.profile = [{ latent: 64, stepMs: 1, source: 'gpu', ops: [] }];
  const bad = from('gpu-profile.json', gpu);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(
    /^npm run bench: --from .*: gpu\.profile: entry 0 needs finite stepMs and kernelMs.*\n$/,
  );
}, 120_000);
