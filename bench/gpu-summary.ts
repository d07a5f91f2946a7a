// The table of `--only gpu` (bench/gpu.ts), and the ratios ours / PyTorch on the same GPU, named as
// results.json names them.
import { failedSections } from './failures.ts';
import type { GpuResult, GpuVariant } from './gpu.ts';
import type { GpuKernelRates } from './gpu-kernel-rates.ts';
import { profileSections } from './op-profile.ts';
import { checkedProfiles, checkGpuRates } from './saved-results.ts';
import { fmt, printTable, type Row } from './table.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? undefined : s.length % 2 ? s[m] : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** The warm step of a variant at a latent side, ms: the median after the first two (the warm-up). */
export function warmMs(v: GpuVariant, latent: number): number | undefined {
  return median(v.timing.shapes.find((s) => s.latent === latent)?.stepsMs.slice(2) ?? []);
}

/** PyTorch's warm median for the dtype, ms. */
function torchMs(r: GpuResult, dtype: string, latent: number): number | undefined {
  return r.torchCuda?.runs?.[dtype]?.shapes[String(latent)]?.stepMs;
}

/** ours / PyTorch on the same GPU, per variant and latent side (below 1: ours is faster). */
export function gpuRatios(r: GpuResult): Record<string, Record<string, number | undefined>> {
  const out: Record<string, Record<string, number | undefined>> = {};
  for (const v of r.variants ?? []) {
    const row: Record<string, number | undefined> = {};
    for (const latent of [64, 128]) {
      const ours = warmMs(v, latent);
      const torch = torchMs(r, v.dtype, latent);
      row[latent] = ours === undefined || torch === undefined ? undefined : +(ours / torch).toFixed(2);
    }
    out[variantName(v)] = row;
  }
  return out;
}

/** A GPU results file's `gpu` part, or an error naming what is wrong with it (for --from). */
export function checkedGpuResult(gpu: unknown): GpuResult {
  const r = gpu as GpuResult | null;
  const arrays = ['providers', 'variants', 'accuracy', 'leftOut', 'profile'] as const;
  if (
    typeof r !== 'object' ||
    r === null ||
    Array.isArray(r) ||
    (typeof r.skipped !== 'string' && !Array.isArray(r.providers)) ||
    arrays.some((k) => r[k] !== undefined && !Array.isArray(r[k])) ||
    r.variants?.some((v) => !Array.isArray(v?.timing?.shapes) || !Array.isArray(v.timing.loadedOn))
  ) {
    throw new Error('not a GPU results file of npm run bench --only gpu');
  }
  checkedProfiles(r.profile, 'gpu');
  checkGpuRates(r.gflop, r.kernelRates);
  return r;
}

/** An error measure as written to JSON: a NaN (a non-finite output) comes back as null. */
const exp = (x: number | null | undefined) =>
  typeof x === 'number' && Number.isFinite(x) ? x.toExponential(2) : 'NaN';

/** TFLOP/s of a step of `ms` at a latent side, from the closed-form arithmetic (GFLOP per ms). */
function tflopsOf(r: GpuResult, latent: number, ms: number | undefined): number | undefined {
  const work = r.gflop?.[String(latent)];
  return work === undefined || ms === undefined ? undefined : work / ms;
}

/** One decimal, or two significant digits below 1 (a small test checkpoint's rates). */
const tflops = (rate: number) => (rate < 1 ? rate.toPrecision(2) : fmt(rate, 1));

/** The faster of the provider's two kernel rates for a precision, TFLOP/s. */
function kernelPeak(r: GpuResult, dtype: string): number | undefined {
  const k = r.kernelRates?.find((x) => x.dtype === dtype);
  return k ? Math.max(k.matmulTflops, k.convTflops) : undefined;
}

/** " (12.3 TFLOPS, 41 % of the kernel rate)", or less where a figure is missing. */
function rateNote(r: GpuResult, dtype: string, latent: number, ms: number | undefined): string {
  const rate = tflopsOf(r, latent, ms);
  if (rate === undefined) return '';
  const peak = kernelPeak(r, dtype);
  return ` (${tflops(rate)} TFLOPS${peak === undefined ? '' : `, ${fmt((100 * rate) / peak, 0)} % of the kernel rate`})`;
}

const variantName = (v: GpuVariant) => `${v.dtype}${v.layout ? ` ${v.layout}` : ''}`;

export function gpuTable(r: GpuResult): string {
  if (r.skipped) return `\nGPU: skipped (${r.skipped})`;
  const sections: { title: string; rows: Row[] }[] = [];
  const device = r.torchCuda?.device ? ` on ${r.torchCuda.device}` : '';
  const ratios = gpuRatios(r);
  sections.push({
    title: `Our engine, the UNet of ${r.checkpoint ?? 'the checkpoint'}, batch 2 (CFG), [${r.providers?.join(', ')}]${device}, ms per step`,
    rows: (r.variants ?? []).flatMap((v) => {
      const fell =
        v.timing.loadedOn.join(',') !== r.providers?.join(',')
          ? ` (loaded on ${v.timing.loadedOn.join(',')})`
          : '';
      const ratio = ratios[variantName(v)];
      return [
        { name: `${variantName(v)}${fell}: session creation`, value: `${fmt(v.timing.loadMs / 1000, 1)} s` },
        ...v.timing.shapes.map((s) => ({
          name: `  ${s.latent}×${s.latent}: first two → warm median`,
          value: `${s.stepsMs
            .slice(0, 2)
            .map((x) => fmt(x, 0))
            .join(
              ', ',
            )} → ${fmt(warmMs(v, s.latent), 1)}${rateNote(r, v.dtype, s.latent, warmMs(v, s.latent))}`,
          budget: `ours / PyTorch ${ratio?.[s.latent] ?? '—'}`,
        })),
      ];
    }),
  });
  if (r.kernelRates?.length) {
    const k = r.kernelRates[0] as GpuKernelRates;
    sections.push({
      title: `The provider's own kernels on [${r.providers?.join(', ')}]: ${k.chain} MatMuls of ${k.n}² / ${k.chain} 3×3 convolutions, ${k.conv.channels} channels on ${k.conv.side}² (batch 2), TFLOPS`,
      rows: r.kernelRates.map((x) => ({
        name: x.dtype,
        value: `${tflops(x.matmulTflops)} / ${tflops(x.convTflops)}`,
      })),
    });
  }
  const t = r.torchCuda;
  // its own kernels (cuDNN, cuBLAS, tensor cores), so its rate alone, not a share of ours
  const torchRate = (l: number, ms: number) => {
    const rate = tflopsOf(r, l, ms);
    return rate === undefined ? '' : ` (${tflops(rate)} TFLOPS)`;
  };
  if (t?.runs) {
    sections.push({
      title: `PyTorch, ldm's UNet on the GPU (torch ${t.torch}, CUDA ${t.cuda}), ms per step: first → warm median`,
      rows: Object.entries(t.runs).map(([dtype, run]) => ({
        name: `${dtype} (weights ${run.weights})`,
        value: [64, 128]
          .map((l) => {
            const s = run.shapes[String(l)];
            return `${l}: ${s ? `${fmt(s.coldMs[0], 0)} → ${fmt(s.stepMs, 1)}${torchRate(l, s.stepMs)}` : '—'}`;
          })
          .join(' | '),
      })),
    });
  } else if (t?.skipped) {
    sections.push({ title: t.skipped, rows: [] });
  }
  if (r.job) {
    const j = r.job;
    sections.push({
      title: `A whole 512→1024 job on the GPU, ${j.dtype}, after one warm-up job, ms`,
      rows: [
        { name: 'tokenize + text encode', value: fmt(j.textEncodeMs) },
        {
          name: `base pass, ${j.base.steps} steps (per step)`,
          value: `${fmt(j.base.wallMs, 0)} (${fmt(j.base.stepMs)})`,
        },
        { name: 'latent upscale', value: fmt(j.upscaleMs) },
        {
          name: `hires pass, ${j.hires.steps} steps (per step)`,
          value: `${fmt(j.hires.wallMs, 0)} (${fmt(j.hires.stepMs)})`,
        },
        { name: 'VAE decode 512 / 1024', value: `${fmt(j.decodeMs[0])} / ${fmt(j.decodeMs[1])}` },
        { name: 'PNG encode 512 / 1024', value: `${fmt(j.pngMs[0])} / ${fmt(j.pngMs[1])}` },
        { name: 'total', value: fmt(j.totalMs, 0) },
        {
          name: 'ours between steps, base / hires (µs)',
          value: `${fmt(j.base.overheadUs, 0)} / ${fmt(j.hires.overheadUs, 0)}`,
        },
      ],
    });
  }
  if (r.accuracy?.length) {
    sections.push({
      title: "The UNet's output at 64×64 (batch 2, fixed inputs) against the same weights in fp32 on the CPU",
      rows: r.accuracy.map((a) => ({
        name: `ours, ${a.dtype} on ${a.on?.join(',') ?? 'the GPU'}`,
        value: `rel. L2 ${exp(a.relL2)}, max |Δ| ${exp(a.maxAbs)}`,
      })),
    });
  }
  const torchAccuracy = Object.entries(r.torchCuda?.runs ?? {}).filter(([, run]) => run.accuracy);
  if (torchAccuracy.length) {
    sections.push({
      title: 'PyTorch on the GPU, the same measure (same weights and inputs)',
      rows: torchAccuracy.map(([dtype, run]) => ({
        name: `PyTorch, ${dtype}`,
        value: `rel. L2 ${exp(run.accuracy?.relL2)}, max |Δ| ${exp(run.accuracy?.maxAbs)}`,
      })),
    });
  }
  const imported = Object.entries(r.importMs ?? {});
  if (imported.length) {
    sections.push({
      title: 'Import of the checkpoint (our importer), s',
      rows: imported.map(([d, ms]) => ({ name: d, value: fmt(ms / 1000, 1) })),
    });
  }
  // an older file's profile has no dtype: it is the first variant's
  const layout = r.variants?.[0]?.layout ?? '';
  sections.push(
    ...profileSections(
      r.profile?.map((p) => (p.dtype ? p : { ...p, dtype: r.variants?.[0]?.dtype })),
      `Ours, ${r.providers?.join(',') ?? ''}${layout ? ` ${layout}` : ''}`,
    ),
  );
  sections.push(...failedSections(r.failed, 'FAILED (the phases after them still ran)'));
  if (r.leftOut?.length) {
    sections.push({ title: 'Left out for time', rows: r.leftOut.map((p) => ({ name: p, value: '' })) });
  }
  return printTable(sections);
}
