// `--profile`: onnxruntime's profile events summed by operator for the last run only, from the
// CPU's node events or webgpu's GPU dispatches (their formats as onnxruntime 1.30 writes them:
// core/common/profiler.cc and providers/webgpu/webgpu_context.cc), and a real profile of the tiny
// model on the CPU.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { checkedGpuResult, gpuTable } from '../../bench/gpu-summary.ts';
import { opTimes, type ProfileEvent, profileSections, profileUnet } from '../../bench/op-profile.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-op-profile-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (ts: number, dur: number): ProfileEvent => ({ cat: 'Session', name: 'model_run', ts, dur });
const node = (op: string, ts: number, dur: number): ProfileEvent => ({
  cat: 'Node',
  name: `${op}_1_kernel_time`,
  ts,
  dur,
  args: { op_name: op },
});
const dispatch = (op: string, ts: number, dur: number): ProfileEvent => ({
  cat: 'Api',
  name: `/down/${op}_7&${op}&${op}Program`,
  ts,
  dur,
});

it('sums the last run’s CPU kernels by operator, slowest first', () => {
  const events = [
    run(0, 1000),
    node('Conv', 10, 900), // the first (warm-up) run: left out
    run(2000, 1000),
    node('Conv', 2010, 300),
    node('MatMul', 2400, 500),
    node('Conv', 2900, 100),
    { cat: 'Node', name: 'Conv_1_fence_before', ts: 2950, dur: 7, args: { op_name: 'Conv' } },
  ];
  expect(opTimes(events)).toEqual({
    source: 'cpu',
    kernelMs: 0.9,
    ops: [
      { op: 'MatMul', ms: 0.5, kernels: 1 },
      { op: 'Conv', ms: 0.4, kernels: 2 },
    ],
  });
});

it('takes the last run of the GPU dispatches, whatever their clock', () => {
  // GPU timestamps on their own clock (large numbers), two runs of three dispatches each; a node
  // event of no provider (the CPU's, as onnxruntime writes it, names one) is not a CPU node
  const gpu = [
    dispatch('Conv', 9e9 + 1, 1000),
    dispatch('MultiHeadAttention', 9e9 + 2, 1000),
    dispatch('Conv', 9e9 + 3, 1000),
    dispatch('Conv', 9e9 + 10, 250),
    dispatch('MultiHeadAttention', 9e9 + 11, 1500),
    dispatch('Conv', 9e9 + 12, 250),
  ];
  const events = [run(0, 5000), run(6000, 5000), node('Shape', 6100, 3), ...gpu.reverse()];
  expect(opTimes(events)).toEqual({
    source: 'gpu',
    kernelMs: 2,
    ops: [
      { op: 'MultiHeadAttention', ms: 1.5, kernels: 1 },
      { op: 'Conv', ms: 0.5, kernels: 2 },
    ],
  });
});

it('finds where the last run begins among the GPU dispatches when the first run made more', () => {
  // three one-time uploads in the first run, then two warm runs of Conv, MultiHeadAttention
  const ops = [
    'Upload',
    'Upload',
    'Upload',
    'Conv',
    'MultiHeadAttention',
    'Conv',
    'MultiHeadAttention',
    'Conv',
    'MultiHeadAttention',
  ];
  const durs = [9000, 9000, 9000, 800, 900, 700, 600, 500, 400];
  const gpu = ops.map((op, i) => dispatch(op, 7e9 + i, durs[i] as number));
  const cpuShape = {
    ...node('Shape', 12_100, 30),
    args: { op_name: 'Shape', provider: 'CPUExecutionProvider' },
  };
  const gpuNodeOnHost = {
    ...node('Conv', 12_200, 99),
    args: { op_name: 'Conv', provider: 'WebGpuExecutionProvider' },
  };
  const events = [run(0, 5000), run(6000, 5000), run(12_000, 5000), cpuShape, gpuNodeOnHost, ...gpu];
  // the last two dispatches (an even share, 3, would take a Conv of the run before), the CPU's Shape
  // node, and not the host side of a GPU node
  expect(opTimes(events)).toEqual({
    source: 'gpu',
    kernelMs: 0.93,
    ops: [
      { op: 'Conv', ms: 0.5, kernels: 1 },
      { op: 'MultiHeadAttention', ms: 0.4, kernels: 1 },
      { op: 'Shape (CPU)', ms: 0.03, kernels: 1 },
    ],
  });
});

it('tells runs apart by whole dispatch names, so blocks repeated within a run are not taken for runs', () => {
  // a run is one block of two kernels three times over (as a UNet's transformer blocks are), each
  // node named on its own; the first run adds twelve one-time dispatches
  const block = (k: number) => [
    { name: `/b${k}/Conv&Conv&ConvProgram`, ms: 1 },
    { name: `/b${k}/Mha&MultiHeadAttention&FlashProgram`, ms: 2 },
  ];
  const oneRun = [...block(1), ...block(2), ...block(3)];
  const extras = Array.from({ length: 12 }, (_, i) => ({
    name: `/init${i}&Transpose&TransposeProgram`,
    ms: 50,
  }));
  const gpu = [...extras, ...oneRun, ...oneRun, ...oneRun].map((d, i) => ({
    cat: 'Api',
    name: d.name,
    ts: 1e9 + i,
    dur: d.ms * 1000,
  }));
  expect(opTimes([run(0, 10), run(20, 10), run(40, 10), ...gpu])).toEqual({
    source: 'gpu',
    kernelMs: 9,
    ops: [
      { op: 'MultiHeadAttention', ms: 6, kernels: 3 },
      { op: 'Conv', ms: 3, kernels: 3 },
    ],
  });
});

it('sums nothing from a GPU provider without its timestamps: host times are not kernel times', () => {
  const onHost = { ...node('Conv', 20, 500), args: { op_name: 'Conv', provider: 'WebGpuExecutionProvider' } };
  expect(opTimes([run(0, 100), onHost, node('Shape', 30, 5)])).toEqual({
    source: 'none',
    kernelMs: 0,
    ops: [],
  });
});

it('sums nothing when the GPU dispatches do not repeat, or the events are malformed', () => {
  const gpu = ['A', 'B', 'C', 'D'].map((op, i) => dispatch(op, i, 100));
  expect(opTimes([run(0, 10), run(20, 10), ...gpu])).toEqual({ source: 'none', kernelMs: 0, ops: [] });
  // a negative duration, a missing time: left out, not summed as negative or NaN
  const bad = [
    run(0, 100),
    node('Conv', 10, -5),
    { ...node('Conv', 20, 3), ts: undefined },
    node('Add', 30, 2000),
  ];
  expect(opTimes(bad)).toEqual({ source: 'cpu', kernelMs: 2, ops: [{ op: 'Add', ms: 2, kernels: 1 }] });
});

it('says so when there is nothing to sum', () => {
  expect(opTimes([])).toEqual({ source: 'none', kernelMs: 0, ops: [] });
});

it('profiles a real step of the tiny model on the CPU, and prints it', async () => {
  const dir = path.join(work, 'tiny');
  writeTinyModel(dir, { layout: 'diffusers' });
  const [p8, p] = await profileUnet(dir, { executionProviders: ['cpu'], intraOpThreads: 1 }, [8, 16], 'tiny');
  expect([p8?.latent, p?.latent]).toEqual([8, 16]);
  expect(p?.source).toBe('cpu');
  // one run of the same graph at either size: the same kernels, once each (a window that took in
  // two runs, or part of one, would count others)
  const kernels = (x: typeof p) => Object.fromEntries(x?.ops.map((o) => [o.op, o.kernels]) ?? []);
  expect(kernels(p)).toEqual(kernels(p8));
  // the tiny UNet holds one Floor, one Ceil and one Exp (its sigma lookup, tiny-model.ts): once a run
  expect(kernels(p)).toMatchObject({ Floor: 1, Ceil: 1, Exp: 1 });
  // the kernels ran inside the step
  expect(p?.kernelMs).toBeLessThanOrEqual(p?.stepMs ?? 0);
  const [section] = profileSections(p ? [p] : [], 'tiny');
  expect(section?.title).toBe('tiny, 16×16 step by operator (CPU kernel times), ms');
  expect(section?.rows.at(-1)?.name).toBe("kernels in all / the step's wall time");
});

it('a GPU run’s table shows its profile, and --from refuses a profile that is not a list', () => {
  const profile = [
    {
      latent: 64,
      stepMs: 120,
      source: 'gpu' as const,
      kernelMs: 60,
      ops: [
        { op: 'MultiHeadAttention', ms: 45, kernels: 16 },
        { op: 'Conv', ms: 15, kernels: 98 },
      ],
    },
  ];
  const table = gpuTable({ providers: ['webgpu'], variants: [], profile });
  expect(table).toContain('64×64 step by operator (GPU timestamps), ms');
  expect(table).toMatch(/MultiHeadAttention \(16 kernels\)\s+45\.0\s+75 %/);
  expect(table).toMatch(/kernels in all \/ the step's wall time\s+60\.0 \/ 120\.0\s+50 % busy/);
  expect(() => checkedGpuResult({ providers: ['webgpu'], profile: {} })).toThrow(/not a GPU results file/);
});

it('a GPU run profiles each precision under its own title; an older file’s profile is its first variant’s', () => {
  const step = (dtype: string | undefined, ms: number) => ({
    latent: 128,
    stepMs: 2 * ms,
    source: 'gpu' as const,
    kernelMs: ms,
    ...(dtype ? { dtype } : {}),
    ops: [{ op: 'Conv', ms, kernels: 98 }],
  });
  const fp16 = {
    dtype: 'fp16' as const,
    layout: 'NHWC',
    timing: { label: '', loadedOn: ['webgpu'], loadMs: 1, textEncodeMs: 1, shapes: [] },
  };
  const table = gpuTable({
    providers: ['webgpu'],
    variants: [fp16],
    profile: [step('fp16', 400), step('fp32', 500)],
  });
  expect(table).toMatch(
    /Ours, webgpu NHWC fp16, 128×128 step by operator[^\n]*\n(.*\n){1,3}.*400\.0 \/ 800\.0/,
  );
  expect(table).toMatch(
    /Ours, webgpu NHWC fp32, 128×128 step by operator[^\n]*\n(.*\n){1,3}.*500\.0 \/ 1000\.0/,
  );
  const older = gpuTable({ providers: ['webgpu'], variants: [fp16], profile: [step(undefined, 400)] });
  expect(older).toContain('Ours, webgpu NHWC fp16, 128×128 step by operator');
  expect(() => checkedGpuResult({ providers: ['webgpu'], profile: [step('fp8', 1)] })).toThrow(
    /gpu\.profile: entry 0 has a dtype other than fp16 or fp32/,
  );
});
