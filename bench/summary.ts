// Results → the printed table and bench/results.json, with each budget of issue #11 beside its
// figure and the side-by-side ratios named as the issue names them.
import type { EngineLoopResult } from './engine-loop.ts';
import { failedSections } from './failures.ts';
import type { FullResult } from './full.ts';
import type { ThroughputResult } from './job-throughput.ts';
import { fastestRate } from './kernel-rates.ts';
import { profileSections } from './op-profile.ts';
import type { OverheadResult } from './overhead.ts';
import type { PngTiming } from './png.ts';
import type { RealModelTiming } from './real-model.ts';
import type { TorchCuda } from './side-by-side.ts';
import { budget, fmt, printTable, type Row } from './table.ts';

export interface BenchRun {
  machine: Record<string, unknown>;
  overhead: OverheadResult[];
  png: PngTiming[];
  engine: EngineLoopResult;
  jobService: (ThroughputResult | { database: string; skipped: string })[];
  full: FullResult;
}

/**
 * The warm step at a latent side, in seconds: the fastest after the first (cold) one. On a shared
 * machine other work only ever adds time, so the fastest step is the closest to the model's own.
 */
function warmS(t: RealModelTiming | undefined, latent: number): number | undefined {
  return bestWarm(t?.shapes.find((s) => s.latent === latent)?.stepsMs.map((ms) => ms / 1000));
}
const bestWarm = (xs: number[] | undefined) =>
  xs?.length ? Math.min(...(xs.length > 1 ? xs.slice(1) : xs)) : undefined;
const lastOf = bestWarm;
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : +(a / b).toFixed(3);

export function summarize(run: BenchRun): { table: string; results: unknown } {
  const sections: { title: string; rows: Row[] }[] = [];

  const stages = run.overhead.find((o) => o.dtype === 'fp32' && o.previewEvery === 5)?.stages;
  if (stages) {
    sections.push({
      title:
        'Stages of a 512→1024 job on the cheap model, fp32, previews every 5 (ms; run() time is the cheap UNet)',
      rows: [
        { name: 'tokenize + text encode', value: fmt(stages.textEncodeMs) },
        { name: `base pass, per step (${stages.base.steps} steps)`, value: fmt(stages.base.stepMs, 2) },
        { name: 'latent upscale 64→128', value: fmt(stages.upscaleMs) },
        { name: `hires pass, per step (${stages.hires.steps} steps)`, value: fmt(stages.hires.stepMs, 2) },
        { name: 'VAE decode 512 / 1024', value: `${fmt(stages.decodeMs[0])} / ${fmt(stages.decodeMs[1])}` },
        { name: 'PNG encode 512 / 1024', value: `${fmt(stages.pngMs[0])} / ${fmt(stages.pngMs[1])}` },
        { name: 'total', value: fmt(stages.totalMs) },
        { name: 'outside run(), share of the total', value: `${(100 * stages.overheadShare).toFixed(0)} %` },
      ],
    });
  }
  sections.push(overheadSection(run.overhead));
  sections.push({
    title: 'PNG encode, 1024×1024 photo-like RGB (sharp, adaptive filtering off), ms',
    rows: run.png.map((p) => ({
      name: `zlib level ${p.compressionLevel}${p.ours ? ' (ours)' : ''}, ${p.kb.toFixed(0)} KB`,
      value: fmt(p.ms),
      ...(p.ours ? { budget: budget(p.ms, 60, 'ms') } : {}),
    })),
  });
  const e = run.engine;
  sections.push({
    title: `The engine (worker thread), cheap model, ${e.jobs} jobs`,
    rows: [
      {
        name: 'event-loop delay p50 / p99, ms',
        value: `${fmt(e.loopDelayMs.p50)} / ${fmt(e.loopDelayMs.p99)}`,
        budget: budget(e.loopDelayMs.p99, 20, 'ms (p99)'),
      },
      {
        name: 'worker boundary per step, µs',
        // a difference of two noisy medians: below zero, the worker's jobs happened to be faster
        value:
          e.workerPerStepUs < 0
            ? `none measurable (${fmt(e.workerPerStepUs, 0)})`
            : fmt(e.workerPerStepUs, 0),
      },
      {
        name: 'RSS after 5 / 50 jobs, MB',
        value: `${fmt(e.rssMb.after5, 0)} / ${fmt(e.rssMb.after50, 0)}`,
        budget:
          e.rssMb.growth <= 0.05
            ? 'within 5 %: met'
            : `within 5 %: MISSED (+${(100 * e.rssMb.growth).toFixed(1)} %)`,
      },
      { name: 'peak RSS, MB', value: fmt(e.rssMb.peak, 0) },
    ],
  });
  sections.push({
    title: 'Job service with a no-op engine (reserve, queue, run, commit)',
    rows: run.jobService.map((j) =>
      'skipped' in j
        ? { name: j.database, value: '—', budget: j.skipped }
        : {
            // (CPU time: steadier than the wall on a shared machine; absent from older results)
            name: `${j.database}, jobs/s (${j.jobs} jobs${j.cpuMsPerJob === undefined ? '' : `, ${fmt(j.cpuMsPerJob, 1)} ms CPU a job`}${roundsOf(j)})`,
            value: fmt(j.jobsPerSecond),
            ...(j.database === 'pglite'
              ? {
                  budget: `≥ 200 jobs/s: ${j.jobsPerSecond >= 200 ? 'met' : `MISSED (${(j.jobsPerSecond / 200).toFixed(2)}×)`}`,
                }
              : {}),
          },
    ),
  });

  const f = run.full;
  const torch = f.torch;
  const ratios = {
    oursOverPyTorch: {
      64: ratio(warmS(f.ours, 64), lastOf(torch?.pytorch?.['64'])),
      128: ratio(warmS(f.ours, 128), lastOf(torch?.pytorch?.['128'])),
    },
    oursOverOrtOnTorchExport: {
      64: ratio(warmS(f.ours, 64), lastOf(torch?.ort?.['64'])),
      128: ratio(warmS(f.ours, 128), lastOf(torch?.ort?.['128'])),
    },
    ourEngineOnTorchExportOverOrtPython: {
      64: ratio(warmS(f.oursOnTorchExport, 64), lastOf(torch?.ort?.['64'])),
    },
  };
  if (f.skipped) {
    sections.push({ title: 'Full-size model', rows: [{ name: f.skipped, value: '' }] });
  } else {
    const steps = (t: RealModelTiming | undefined, latent: number) =>
      t?.shapes
        .find((s) => s.latent === latent)
        ?.stepsMs.map((ms) => (ms / 1000).toFixed(1))
        .join(' → ') ?? '—';
    const secs = (xs: number[] | undefined) => xs?.map((s) => s.toFixed(1)).join(' → ') ?? '—';
    const rows: Row[] = [
      {
        name: 'ours: session creation, cold / second',
        value: `${fmt((f.ours?.loadMs ?? 0) / 1000)} / ${fmt((f.oursWarmLoad?.loadMs ?? 0) / 1000)} s`,
      },
      { name: 'ours: 64×64 steps (cold → warm), s', value: steps(f.ours, 64) },
      { name: 'ours: 128×128 steps (cold → warm), s', value: steps(f.ours, 128) },
    ];
    rows.push(...computeRows(f, warmS(f.ours, 64), warmS(f.ours, 128)));
    for (const v of f.also ?? []) rows.push({ name: `${v.label}: 64×64, s`, value: steps(v, 64) });
    for (const v of f.sessionOptions ?? [])
      rows.push({ name: `ours, ${v.label}: 64×64, s`, value: steps(v, 64) });
    if (torch?.skipped) rows.push({ name: torch.skipped, value: '' });
    else if (torch) {
      rows.push(
        { name: `PyTorch ldm (${torch.attention}): 64×64, s`, value: secs(torch.pytorch?.['64']) },
        { name: 'PyTorch ldm: 128×128, s', value: secs(torch.pytorch?.['128']) },
        { name: 'onnxruntime-python on the torch export: 64×64, s', value: secs(torch.ort?.['64']) },
        { name: 'our engine on the torch export: 64×64, s', value: steps(f.oursOnTorchExport, 64) },
        {
          name: 'ours / PyTorch at 64 / 128',
          value: `${fmt(ratios.oursOverPyTorch[64], 2)} / ${fmt(ratios.oursOverPyTorch[128], 2)}`,
        },
        {
          name: 'ours / onnxruntime on the torch export at 64',
          value: fmt(ratios.oursOverOrtOnTorchExport[64], 2),
          budget: budget(ratios.oursOverOrtOnTorchExport[64], 0.8, '×'),
        },
        ...floorRows(f, lastOf(torch.ort?.['64']), lastOf(torch.pytorch?.['64'])),
        {
          name: 'our engine / onnxruntime, same torch export, 64',
          value: fmt(ratios.ourEngineOnTorchExportOverOrtPython[64], 2),
          budget: budget(ratios.ourEngineOnTorchExportOverOrtPython[64], 1, '×'),
        },
      );
    }
    sections.push({
      title: `Full-size SD 1.5, random weights, fp32, batch-2 CFG, ${f.ours?.label ?? ''}`,
      rows,
    });
    sections.push(...profileSections(f.profile, 'Ours'));
    sections.push(...failedSections(f.failed, 'FAILED (the rest of the run stands)'));
    if (f.torchCuda) sections.push(torchCudaSection(f.torchCuda));
  }
  sections.unshift({
    title: `Machine: ${run.machine.cpu}, load average ${JSON.stringify(run.machine.loadAverage)}`,
    rows: [],
  });

  // per-step lists are long: the JSON keeps the medians and maxima
  const overhead = run.overhead.map(({ stages: s, ...o }) => ({
    ...o,
    stages: { ...s, base: { ...s.base, perStepUs: undefined }, hires: { ...s.hires, perStepUs: undefined } },
  }));
  return { table: printTable(sections), results: { ...run, overhead, ratios } };
}

/**
 * The step's arithmetic against this CPU's ceiling: GFLOP per step over seconds per step, and that
 * as a share of the faster of this CPU's two kernel rates (a MatMul, a 3×3 convolution). Near
 * 100 %, no graph rewrite can make the step much faster.
 */
function computeRows(f: FullResult, s64: number | undefined, s128: number | undefined): Row[] {
  const c = f.compute;
  if (!c) return [];
  const g = (latent: number) => c.gflop[latent]?.total;
  const peak = c.kernelRates ? fastestRate(c.kernelRates) : undefined;
  const achieved = (latent: number, s: number | undefined) => {
    const work = g(latent);
    if (work === undefined || s === undefined) return '—';
    const rate = work / s;
    return peak === undefined ? fmt(rate, 0) : `${fmt(rate, 0)} (${fmt((100 * rate) / peak, 0)} %)`;
  };
  const rows: Row[] = [
    { name: 'UNet arithmetic per step at 64 / 128, GFLOP', value: `${fmt(g(64), 0)} / ${fmt(g(128), 0)}` },
  ];
  if (c.kernelRates) {
    rows.push({
      name: `this CPU's kernel rates (onnxruntime, ${c.kernelRates.threads} threads): MatMul ${c.kernelRates.n}² / 3×3 conv, GFLOPS`,
      value: `${fmt(c.kernelRates.gflops, 0)} / ${fmt(c.kernelRates.convGflops, 0)}`,
    });
  }
  rows.push({
    name: `ours at 64 / 128, GFLOPS${peak === undefined ? '' : ' (share of the faster)'}`,
    value: `${achieved(64, s64)} / ${achieved(128, s128)}`,
  });
  return rows;
}

/** The same for the side by side at 64, and the lowest ratio a step at the faster kernel rate would give. */
function floorRows(f: FullResult, ortS: number | undefined, torchS: number | undefined): Row[] {
  const work = f.compute?.gflop[64]?.total;
  const peak = f.compute?.kernelRates ? fastestRate(f.compute.kernelRates) : undefined;
  if (work === undefined || ortS === undefined) return [];
  const rows: Row[] = [
    {
      name: 'onnxruntime-python / PyTorch at 64, GFLOPS',
      value: `${fmt(work / ortS, 0)} / ${torchS === undefined ? '—' : fmt(work / torchS, 0)}`,
    },
  ];
  if (peak !== undefined) {
    rows.push({
      name: 'ours / onnxruntime at 64 if all of ours ran at the faster kernel rate',
      value: fmt(work / peak / ortS, 2),
      budget: 'the lowest this ratio can go on this CPU',
    });
  }
  return rows;
}

/** The per-step overhead rows, each beside its budget (ours: ≤ 100 µs at 64×64, ≤ 400 µs at 128×128). */
function overheadSection(overhead: OverheadResult[]): { title: string; rows: Row[] } {
  const jobs = overhead[0]?.jobs ?? 3;
  return {
    title: `Our overhead per step, µs: wall − run(), median (and smallest) step of ${jobs} jobs, batch-2 CFG`,
    rows: overhead.flatMap((o) => [
      {
        name: `${o.dtype}, previews ${o.previewEvery || 'off'}, 64×64`,
        value: `${fmt(o.base64, 0)} (${fmt(o.minBase64, 0)})`,
        budget: `median ${budget(o.base64, 100, 'µs')}`,
      },
      {
        name: `${o.dtype}, previews ${o.previewEvery || 'off'}, 128×128`,
        value: `${fmt(o.hires128, 0)} (${fmt(o.minHires128, 0)})`,
        budget: `median ${budget(o.hires128, 400, 'µs')}`,
      },
    ]),
  };
}

/** `bench --only overhead`: the overhead table alone. */
export function overheadTable(overhead: OverheadResult[]): string {
  return printTable([overheadSection(overhead)]);
}

/** PyTorch on the GPU: the first run (cuDNN's search) and the warm median per dtype and shape. */
function torchCudaSection(t: TorchCuda): { title: string; rows: Row[] } {
  if (t.skipped) return { title: 'PyTorch on the GPU', rows: [{ name: t.skipped, value: '' }] };
  const rows: Row[] = [];
  for (const [dtype, run] of Object.entries(t.runs ?? {})) {
    for (const [latent, s] of Object.entries(run.shapes)) {
      rows.push({
        name: `${dtype}${run.weights === dtype ? '' : ` (${run.weights} weights)`} ${latent}×${latent}: first run → warm, ms`,
        value: `${fmt(s.coldMs[0] ?? Number.NaN)} → ${fmt(s.stepMs, 1)}`,
      });
    }
  }
  return { title: `PyTorch ldm on ${t.device} (torch ${t.torch}, CUDA ${t.cuda}), batch 2`, rows };
}

/** ", median of 3 rounds: 190–246" for a result of several rounds (older results have one). */
function roundsOf(j: ThroughputResult): string {
  const rounds = j.rounds ?? [];
  if (rounds.length < 2) return '';
  return `; median of ${rounds.length} rounds, ${fmt(Math.min(...rounds))}–${fmt(Math.max(...rounds))}`;
}
