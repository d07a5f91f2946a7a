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

it("prints a quiet run's arithmetic rows: GFLOPS, their share of the MatMul peak and the floor, worked out by hand", () => {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/index.ts', '--from', 'bench/results-cpu.sample.json'],
    { cwd: root, encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  // 1606.547 GFLOP (the closed form at 64×64) / 9.171 s (the fastest warm step) = 175.2 GFLOPS,
  // 101.8 % of 172.09; 9348.012 / 58.197 s = 160.6, 93.3 %
  expect(run.stdout).toMatch(
    /ours at 64 \/ 128, GFLOPS \(share of the MatMul peak\)\s+175 \(102 %\) \/ 161 \(93 %\)/,
  );
  expect(run.stdout).toMatch(/this CPU's MatMul peak \(onnxruntime, 2048², 2 threads\), GFLOPS\s+172/);
  // 1606.547 / 10.030 s and / 9.969 s; 1606.547 / 172.09 / 10.030 = 0.931
  expect(run.stdout).toMatch(/onnxruntime-python \/ PyTorch at 64, GFLOPS\s+160 \/ 161/);
  expect(run.stdout).toMatch(/if ours ran at the MatMul peak\s+0\.93\s+the lowest this ratio can go/);
  expect(run.stdout).toMatch(/MultiHeadAttention \(32 kernels\)\s+1693\.0\s+19 %/);
});
