// `npm run bench -- --only gpu`: its ratios and error measure against closed forms, its table from
// a saved run (bench/results-gpu.sample.json: an H100 run), and its refusals of bad flags.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { compare, type GpuResult } from '../../bench/gpu.ts';
import { modelDirOf } from '../../bench/gpu-cli.ts';
import { gpuRatios, gpuTable, warmMs } from '../../bench/gpu-summary.ts';

const root = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'hiresbot-bench-gpu-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bench = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/index.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
  });

const variant = (stepsMs: number[]) => ({
  dtype: 'fp16' as const,
  layout: 'NHWC',
  timing: {
    label: 'x',
    loadedOn: ['webgpu'],
    loadMs: 5000,
    textEncodeMs: 1,
    shapes: [{ latent: 64, stepsMs }],
  },
});

it('the warm step is the median after the first two runs, and ours / PyTorch divides the warm steps', () => {
  // the first two (shader builds) are left out whatever they took
  expect(warmMs(variant([9000, 8000, 130, 120, 125]), 64)).toBe(125);
  expect(warmMs(variant([9000, 8000, 130, 120, 125, 121]), 64)).toBe(123);
  expect(warmMs(variant([9000, 8000]), 64)).toBeUndefined();
  const result: GpuResult = {
    variants: [variant([9000, 8000, 130, 120, 125])],
    torchCuda: {
      runs: { fp16: { weights: 'fp16', shapes: { 64: { coldMs: [4000], stepMs: 50, peakMemMiB: 1800 } } } },
    },
  };
  expect(gpuRatios(result)).toEqual({ 'fp16 NHWC': { 64: 2.5, 128: undefined } });
});

it('the error measure is ‖got − want‖ / ‖want‖ with the largest difference, and a NaN never reads as a match', () => {
  const want = Float32Array.from([3, 4, 0, 0]);
  expect(compare(Float32Array.from([3, 4, 0, 0]), want)).toEqual({ relL2: 0, maxAbs: 0 });
  // Δ = (0, 0, 0.3, 0.4): ‖Δ‖ = 0.5, ‖want‖ = 5
  const off = compare(Float32Array.from([3, 4, 0.3, 0.4]), want);
  expect(off.relL2).toBeCloseTo(0.1, 6);
  expect(off.maxAbs).toBeCloseTo(0.4, 6);
  expect(compare(Float32Array.from([3, Number.NaN, 0, 0]), want).relL2).toBeNaN();
  expect(compare(Float32Array.from([3, 4, 0]), want).relL2).toBeNaN();
});

it('prints a saved GPU run: every step figure, the ratios, and both error measures', () => {
  const run = bench('--from', path.join(root, 'bench/results-gpu.sample.json'));
  expect(run.status).toBe(0);
  const saved = JSON.parse(readFileSync(path.join(root, 'bench/results-gpu.sample.json'), 'utf8'));
  // ours' warm median over PyTorch's, from the file's figures: 121.6 / 49.554, 493.6 / 59.605,
  // 136.3 / 45.992, 557.1 / 257.782 ms
  const expected = { 'fp16 NHWC': { 64: 2.45, 128: 8.28 }, 'fp32 NHWC': { 64: 2.96, 128: 2.16 } };
  expect(gpuRatios(saved.gpu)).toEqual(expected);
  expect(saved.ratios.oursGpuOverPyTorchCuda).toEqual(expected);
  expect(run.stdout).toContain('[webgpu] on NVIDIA H100 80GB HBM3');
  expect(run.stdout).toMatch(
    /128×128: first two → warm median\s+491, 494 → 493\.6 \(18\.9 TFLOPS\)\s+ours \/ PyTorch 8\.28/,
  );
  expect(run.stdout).toMatch(/ours, fp32 on webgpu\s+rel\. L2 8\.38e-6/);
  expect(run.stdout).toMatch(/PyTorch, fp16\s+rel\. L2 2\.25e-3/);
  expect(run.stdout).toMatch(/total\s+14766/);
  // the closed-form arithmetic (bench/unet-flops.ts) over the warm step: 9348.01 GFLOP / 493.6 ms,
  // and PyTorch's 9348.01 / 59.605
  expect(run.stdout).toContain('493.6 (18.9 TFLOPS)');
  expect(run.stdout).toContain('59.6 (156.8 TFLOPS)');
}, 60_000);

it("shows the provider's own kernel rates, and each step's TFLOPS as a share of the faster", () => {
  const result: GpuResult = {
    providers: ['webgpu'],
    gflop: { 64: 1606.5 },
    variants: [variant([9000, 8000, 130, 120, 125])],
    kernelRates: [
      {
        dtype: 'fp16',
        n: 4096,
        chain: 8,
        conv: { channels: 320, side: 128 },
        matmulTflops: 40,
        convTflops: 25,
      },
    ],
  };
  const table = gpuTable(result);
  // 1606.5 GFLOP / 125 ms = 12.85 TFLOPS, 32 % of the MatMul's 40
  expect(table).toContain('9000, 8000 → 125.0 (12.9 TFLOPS, 32 % of the kernel rate)');
  expect(table).toMatch(
    /8 MatMuls of 4096² \/ 8 3×3 convolutions, 320 channels on 128² \(batch 2\), TFLOPS\n\s+fp16\s+40\.0 \/ 25\.0/,
  );
  // without rates or arithmetic, the step alone
  expect(gpuTable({ ...result, gflop: undefined, kernelRates: undefined })).toMatch(/8000 → 125\.0\s/);
  expect(gpuTable({ ...result, kernelRates: undefined })).toContain('125.0 (12.9 TFLOPS)');
  // a provider that fell back to the CPU is named on its variant
  const v = variant([9000, 8000, 130]);
  v.timing.loadedOn = ['cpu'];
  expect(gpuTable({ ...result, variants: [v] })).toContain('fp16 NHWC (loaded on cpu): session creation');
});

it('stops in seconds, importing nothing, when the GPU provider cannot start', () => {
  // no Vulkan driver manifest, on any machine: onnxruntime would fall back to the CPU and every
  // phase would time the CPU under the GPU's name (an H100 host without libglvnd did, 8 minutes)
  const model = path.join(dir, 'nogpu-fp32');
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/index.ts',
      '--only',
      'gpu',
      '--providers',
      'webgpu,cpu',
      '--checkpoint',
      'test/fixtures/sd1-tiny-checkpoint/model.safetensors',
      '--model',
      model,
      '--out',
      path.join(dir, 'nogpu.json'),
    ],
    {
      cwd: root,
      encoding: 'utf8',
      env: {
        ...process.env,
        VK_ICD_FILENAMES: '/nonexistent/icd.json',
        VK_DRIVER_FILES: '/nonexistent/icd.json',
      },
    },
  );
  expect(run.status, run.stderr).toBe(2);
  expect(run.stderr).toMatch(
    /\nnpm run bench: --only gpu: \[webgpu\] cannot start, so nothing would run on the GPU: Failed to get a WebGPU adapter: [^\n]+\n$/,
  );
  expect(existsSync(model)).toBe(false);
  expect(existsSync(modelDirOf(model, 'fp16'))).toBe(false);
});

it('refuses flags it cannot run, in one line, before importing anything', () => {
  const textFile = path.join(dir, 'notes.safetensors');
  writeFileSync(textFile, 'not a checkpoint');
  const tiny = 'test/fixtures/sd1-tiny-checkpoint/model.safetensors';
  for (const [args, message] of [
    [['--providers', 'cpu'], /--only gpu needs a GPU provider in --providers or EXECUTION_PROVIDERS/],
    [
      ['--providers', 'foo'],
      /--providers must be a comma list of cpu, cuda, .* \(unknown: foo\) \(got "foo"\)/,
    ],
    [['--providers', 'webgpu', '--latents', '7'], /--latents takes latent sides from 8 to 256/],
    // onnxruntime asked for 100 000 threads hangs; a million warm steps outlast any budget
    [
      ['--providers', 'webgpu', '--threads', '100000'],
      /--threads must be a whole number from 1 to 256 \(got "100000"\)/,
    ],
    [['--providers', 'webgpu', '--warm-steps', '5000'], /--warm-steps must be a whole number from 1 to 1000/],
    [['--providers', 'webgpu', '--dtypes', 'bf16'], /--dtypes takes fp16 and\/or fp32 \(got "bf16"\)/],
    [['--providers', 'webgpu', '--layouts', ''], /--layouts takes NCHW and\/or NHWC \(got ""\)/],
    [
      ['--providers', 'webgpu', '--checkpoint', tiny, '--out', path.join(dir, 'missing', 'r.json')],
      /--out .*missing.*: ENOENT/,
    ],
    [['--providers', 'webgpu', '--checkpoint', dir], /--checkpoint .* is not a regular file/],
    [['--providers', 'webgpu', '--out', dir], /--out .* is a folder/],
    // the import's own refusal, before any timing (the folder it would have made is not left)
    [
      ['--providers', 'webgpu', '--checkpoint', textFile, '--model', path.join(dir, 'm-fp32')],
      /--checkpoint .*notes\.safetensors: .*safetensors/,
    ],
  ] as const) {
    const run = bench('--only', 'gpu', ...args);
    expect(run.status, run.stderr).toBe(2);
    // one line (after the progress lines of an import that was started), never a stack trace
    expect(run.stderr).toMatch(new RegExp(`(^|\\n)npm run bench: ${message.source}.*\\n$`));
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }
  expect(existsSync(path.join(dir, 'm-fp16'))).toBe(false);
  // no checkpoint: a note, not a failure, in the results file --out names
  const out = path.join(dir, 'mine.json');
  const none = bench(
    '--only',
    'gpu',
    '--providers',
    'webgpu',
    '--checkpoint',
    path.join(dir, 'none.safetensors'),
    '--out',
    out,
  );
  expect(none.status).toBe(0);
  expect(none.stdout).toContain('GPU: skipped (no ');
  expect(JSON.parse(readFileSync(out, 'utf8')).gpu.skipped).toMatch(/^no /);
}, 120_000);

it('a GPU results file that is not one is one line and exit 2; a NaN error (saved as null) prints as NaN', () => {
  const sample = JSON.parse(readFileSync(path.join(root, 'bench/results-gpu.sample.json'), 'utf8'));
  for (const [name, gpu] of [
    ['null', null],
    ['empty', {}],
    ['list', []],
    ['variants', { providers: ['webgpu'], variants: 'x' }],
    ['shapes', { providers: ['webgpu'], variants: [{ dtype: 'fp16', timing: { loadedOn: ['webgpu'] } }] }],
    ['loaded on', { providers: ['webgpu'], variants: [{ dtype: 'fp16', timing: { shapes: [] } }] }],
  ] as const) {
    const file = path.join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ gpu }));
    const run = bench('--from', file);
    expect(run.status, name).toBe(2);
    expect(run.stderr).toMatch(
      /^npm run bench: --from .*: not a GPU results file of npm run bench --only gpu\n$/,
    );
  }
  sample.gpu.accuracy[0].relL2 = Number.NaN;
  sample.gpu.failed = { 'whole job': 'device lost' };
  const file = path.join(dir, 'nan.json');
  writeFileSync(file, JSON.stringify(sample));
  const run = bench('--from', file);
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/ours, fp16 on webgpu\s+rel\. L2 NaN, max \|Δ\| 7\.25e-2/);
  expect(run.stdout).toMatch(/FAILED.*\n\s+whole job\s+device lost/);

  // hand-edited rates and arithmetic: one line naming the field
  for (const [edit, message] of [
    [{ gflop: { 64: 'x' } }, 'gpu.gflop: not a map of latent sides to positive GFLOP'],
    [{ kernelRates: {} }, 'gpu.kernelRates: not a list'],
    [
      {
        kernelRates: [
          {
            dtype: 'fp16',
            n: 4096,
            chain: 8,
            conv: { channels: 320, side: 128 },
            matmulTflops: 0,
            convTflops: 1,
          },
        ],
      },
      'gpu.kernelRates.0: needs a dtype, positive matmulTflops and convTflops, whole n, chain and conv sizes',
    ],
  ] as const) {
    const edited = path.join(dir, 'edited.json');
    writeFileSync(edited, JSON.stringify({ gpu: { ...sample.gpu, ...edit } }));
    const bad = bench('--from', edited);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(`npm run bench: --from ${edited}: ${message}\n`);
  }
}, 60_000);

it("names each precision's folder after the fp32 one, changing only the folder's own name", () => {
  expect(modelDirOf('data/bench/sd15-fp32-v3', 'fp16')).toBe(path.join('data/bench', 'sd15-fp16-v3'));
  expect(modelDirOf('/tmp/fp32-runs/model', 'fp16')).toBe(path.join('/tmp/fp32-runs', 'model-fp16'));
  expect(modelDirOf('/tmp/fp32-runs/model', 'fp32')).toBe('/tmp/fp32-runs/model');
});
