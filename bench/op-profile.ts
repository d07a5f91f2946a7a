// `--profile`: where a UNet step's time goes, by operator, from onnxruntime's own profiler: on the
// CPU its per-node kernel times, on webgpu the provider's GPU timestamps for each dispatch (with
// their sum beside the step's wall time: the rest is the GPU waiting on the host). Three runs per
// latent side, the last summed, in a session of its own so the timed runs stay unprofiled.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type LoadOptions, loadSdModel } from '../src/diffusion/model/sd-model.ts';
import { progress } from './progress.ts';
import { fmt, type Row } from './table.ts';
import { runUnet } from './unet-inputs.ts';

export interface OpTime {
  /** The ONNX operator (MatMul, Conv, MultiHeadAttention, …). */
  op: string;
  ms: number;
  /** Kernel launches (CPU nodes or GPU dispatches) of this operator in the step. */
  kernels: number;
}

export interface StepProfile {
  latent: number;
  /** The model's precision, where a run profiles more than one (--only gpu). */
  dtype?: string;
  /** The profiled run's wall time. */
  stepMs: number;
  /** 'gpu': the provider's GPU timestamps; 'cpu': onnxruntime's node kernel times. */
  source: 'gpu' | 'cpu' | 'none';
  /** The summed kernel time, slowest operator first. */
  kernelMs: number;
  ops: OpTime[];
}

export interface ProfileEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string; provider?: string };
}

/** A finite, non-negative number: a field onnxruntime wrote, not a hand edit. */
const count = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/**
 * How many GPU dispatches the last run made: the period of the tail of the dispatch sequence (the
 * last runs are warm and dispatch the same kernels in the same order), the one nearest an even
 * share, so one-time work in the first run (uploads, layout changes) is not counted in the last.
 * Undefined when the tail does not repeat.
 */
function lastRunLength(ops: string[], runs: number): number | undefined {
  const even = Math.floor(ops.length / runs);
  const repeats = (n: number) => {
    if (n < 1 || 2 * n > ops.length) return false;
    for (let i = ops.length - n; i < ops.length; i++) if (ops[i] !== ops[i - n]) return false;
    return true;
  };
  for (let d = 0; d <= even; d++) {
    if (repeats(even - d)) return even - d;
    if (repeats(even + d)) return even + d;
  }
  return undefined;
}

/**
 * The last run's kernel time by operator. CPU kernels are the node events inside the last
 * `model_run`. GPU dispatches carry "node&op&program" names and GPU timestamps on the GPU's own
 * clock, so the last run's are the last of them in order, as many as `lastRunLength` finds (at
 * least two warm runs are needed to see it); nodes left on the CPU beside the GPU are added from
 * the last run's node events, as "op (CPU)".
 */
export function opTimes(events: ProfileEvent[]): Omit<StepProfile, 'latent' | 'stepMs'> {
  const timed = events.filter((e) => count(e.ts) && count(e.dur));
  const runs = timed
    .filter((e) => e.cat === 'Session' && e.name === 'model_run')
    .sort((a, b) => (a.ts as number) - (b.ts as number));
  const last = runs.at(-1);
  if (!last) return { source: 'none', kernelMs: 0, ops: [] };
  const start = last.ts as number;
  const end = start + (last.dur as number);
  const cpuNodes = (onlyCpu: boolean) =>
    timed
      .filter(
        (e) =>
          e.cat === 'Node' &&
          e.name?.endsWith('_kernel_time') &&
          (e.ts as number) >= start &&
          (e.ts as number) <= end &&
          (!onlyCpu || e.args?.provider === 'CPUExecutionProvider'),
      )
      .map((e) => ({ op: `${e.args?.op_name ?? '?'}${onlyCpu ? ' (CPU)' : ''}`, dur: e.dur as number }));
  const gpu = timed
    .filter((e) => e.cat === 'Api' && (e.name?.split('&').length ?? 0) === 3)
    .sort((a, b) => (a.ts as number) - (b.ts as number))
    .map((e) => ({ name: e.name as string, op: e.name?.split('&')[1] || '?', dur: e.dur as number }));
  let picked: { op: string; dur: number }[];
  let source: StepProfile['source'];
  if (gpu.length > 0) {
    // whole names ("node&op&program"): a node's name is its own within a run, so a run's repeated
    // blocks (16 transformer blocks of the same kernels) are no period of the sequence
    const n =
      runs.length === 1
        ? gpu.length
        : lastRunLength(
            gpu.map((g) => g.name),
            runs.length,
          );
    if (n === undefined) return { source: 'none', kernelMs: 0, ops: [] };
    source = 'gpu';
    picked = [...gpu.slice(gpu.length - n).map(({ op, dur }) => ({ op, dur })), ...cpuNodes(true)];
  } else {
    // nodes on a GPU provider without its timestamps: their times are the host's, not kernels'
    const onGpu = timed.some(
      (e) => e.cat === 'Node' && e.args?.provider !== undefined && e.args.provider !== 'CPUExecutionProvider',
    );
    if (onGpu) return { source: 'none', kernelMs: 0, ops: [] };
    source = 'cpu';
    picked = cpuNodes(false);
  }
  const byOp = new Map<string, OpTime>();
  for (const { op, dur } of picked) {
    const t = byOp.get(op) ?? { op, ms: 0, kernels: 0 };
    t.ms += dur / 1000;
    t.kernels += 1;
    byOp.set(op, t);
  }
  const ops = [...byOp.values()].sort((a, b) => b.ms - a.ms);
  return { source, kernelMs: ops.reduce((sum, o) => sum + o.ms, 0), ops };
}

/** Loads the model with onnxruntime's profiler on and profiles one warm step per latent side. */
export async function profileUnet(
  dir: string,
  options: LoadOptions,
  latents: number[],
  label: string,
): Promise<StepProfile[]> {
  const out: StepProfile[] = [];
  for (const latent of latents) {
    // a session per shape: the profile file holds every run since the session began
    const tmp = mkdtempSync(path.join(tmpdir(), 'hiresbot-profile-'));
    try {
      progress(`${label}: profiling a ${latent}×${latent} step`);
      const model = await loadSdModel(dir, {
        ...options,
        sessionOptions: {
          ...options.sessionOptions,
          enableProfiling: true,
          profileFilePrefix: path.join(tmp, 'unet'),
        },
      });
      try {
        // a warm-up run, then two warm ones: the last is the one summed, the one before it shows
        // where it begins among the GPU's dispatches
        await runUnet(model.unet, latent);
        await runUnet(model.unet, latent);
        const t = performance.now();
        await runUnet(model.unet, latent);
        const stepMs = performance.now() - t;
        model.unet.session.endProfiling();
        // every session opens its file as it starts; only the UNet's has been written
        const written = readdirSync(tmp)
          .map((f) => readFileSync(path.join(tmp, f), 'utf8'))
          .filter((text) => text.trim() !== '');
        if (written.length !== 1) throw new Error(`expected one written profile, found ${written.length}`);
        const events = JSON.parse(written[0] as string) as ProfileEvent[];
        out.push({ latent, stepMs, ...opTimes(events) });
      } finally {
        await model.release();
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return out;
}

/** The printed sections: per latent side, the operators that took the most kernel time. */
export function profileSections(
  profiles: StepProfile[] | undefined,
  what: string,
): { title: string; rows: Row[] }[] {
  return (profiles ?? []).map((p) => {
    const share = (ms: number) => (p.kernelMs > 0 ? `${fmt((100 * ms) / p.kernelMs, 0)} %` : '');
    const top = p.ops.slice(0, 8);
    const rest = p.ops.slice(8).reduce((s, o) => s + o.ms, 0);
    const rows: Row[] = top.map((o) => ({
      name: `${o.op} (${o.kernels} kernels)`,
      value: fmt(o.ms, 1),
      budget: share(o.ms),
    }));
    if (rest > 0)
      rows.push({
        name: `${p.ops.length - top.length} other operators`,
        value: fmt(rest, 1),
        budget: share(rest),
      });
    rows.push({
      name: `kernels in all / the step's wall time`,
      value: `${fmt(p.kernelMs, 1)} / ${fmt(p.stepMs, 1)}`,
      budget: p.stepMs > 0 ? `${fmt((100 * p.kernelMs) / p.stepMs, 0)} % busy` : '',
    });
    const source =
      p.source === 'gpu' ? 'GPU timestamps' : p.source === 'cpu' ? 'CPU kernel times' : 'no kernel events';
    const dtype = p.dtype ? ` ${p.dtype}` : '';
    return { title: `${what}${dtype}, ${p.latent}×${p.latent} step by operator (${source}), ms`, rows };
  });
}
