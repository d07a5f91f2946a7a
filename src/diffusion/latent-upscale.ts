/**
 * A1111's latent upscale modes (`shared.py::latent_upscale_modes`) = torch `F.interpolate` on the
 * (C,H,W) latent, align_corners=False, size given (scale = in/out). Separable: one axis at a time.
 * Sources: `aten/src/ATen/native/UpSample.h` (source index, cubic coefficients, nearest index)
 * and `cpu/UpSampleKernel.cpp` (antialiased weights, after PIL's resampling).
 */
const f = Math.fround;

export const UPSCALERS = [
  'Latent',
  'Latent (antialiased)',
  'Latent (bicubic)',
  'Latent (bicubic antialiased)',
  'Latent (nearest)',
  'Latent (nearest-exact)',
] as const;
export type Upscaler = (typeof UPSCALERS)[number];

/** For each output position: the input indices it reads and their weights. */
type AxisTaps = { index: number[]; weight: number[] }[];

function linearTaps(inSize: number, outSize: number): AxisTaps {
  const scale = inSize / outSize;
  const taps: AxisTaps = [];
  for (let o = 0; o < outSize; o++) {
    const src = Math.max((o + 0.5) * scale - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    const l1 = src - i0;
    taps.push({ index: [i0, i1], weight: [1 - l1, l1] });
  }
  return taps;
}

const A_TORCH = -0.75;
const cubic1 = (x: number, a: number) => ((a + 2) * x - (a + 3)) * x * x + 1;
const cubic2 = (x: number, a: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;

function cubicTaps(inSize: number, outSize: number): AxisTaps {
  const scale = inSize / outSize;
  const taps: AxisTaps = [];
  const clamp = (i: number) => Math.min(Math.max(i, 0), inSize - 1);
  for (let o = 0; o < outSize; o++) {
    const real = scale * (o + 0.5) - 0.5; // not clamped for cubic
    const base = Math.floor(real);
    const t = real - base;
    taps.push({
      index: [clamp(base - 1), clamp(base), clamp(base + 1), clamp(base + 2)],
      weight: [cubic2(t + 1, A_TORCH), cubic1(t, A_TORCH), cubic1(1 - t, A_TORCH), cubic2(2 - t, A_TORCH)],
    });
  }
  return taps;
}

const triangle = (x: number) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0);
function pilCubic(x: number): number {
  const a = -0.5; // PIL's bicubic, as torch's antialiased path uses
  const ax = Math.abs(x);
  if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
  if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
  return 0;
}

/** torch `_compute_indices_weights_aa`: PIL-style support that widens when downscaling. */
function antialiasTaps(inSize: number, outSize: number, interpSize: 2 | 4): AxisTaps {
  const scale = inSize / outSize;
  const filter = interpSize === 2 ? triangle : pilCubic;
  const support = (interpSize / 2) * Math.max(scale, 1);
  const invScale = scale >= 1 ? 1 / scale : 1;
  const taps: AxisTaps = [];
  for (let o = 0; o < outSize; o++) {
    const center = scale * (o + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const index: number[] = [];
    const weight: number[] = [];
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = filter((j + xmin - center + 0.5) * invScale);
      index.push(xmin + j);
      weight.push(w);
      total += w;
    }
    taps.push({ index, weight: weight.map((w) => (total !== 0 ? w / total : 0)) });
  }
  return taps;
}

function nearestTaps(inSize: number, outSize: number, exact: boolean): AxisTaps {
  const scale = f(inSize / outSize);
  const taps: AxisTaps = [];
  for (let o = 0; o < outSize; o++) {
    let i: number;
    if (!exact && outSize === inSize) i = o;
    else if (!exact && outSize === 2 * inSize) i = o >> 1;
    else i = Math.min(Math.floor(f((exact ? o + 0.5 : o) * scale)), inSize - 1);
    taps.push({ index: [i], weight: [1] });
  }
  return taps;
}

function tapsFor(mode: Upscaler, inSize: number, outSize: number): AxisTaps {
  switch (mode) {
    case 'Latent':
      return linearTaps(inSize, outSize);
    case 'Latent (antialiased)':
      return antialiasTaps(inSize, outSize, 2);
    case 'Latent (bicubic)':
      return cubicTaps(inSize, outSize);
    case 'Latent (bicubic antialiased)':
      return antialiasTaps(inSize, outSize, 4);
    case 'Latent (nearest)':
      return nearestTaps(inSize, outSize, false);
    case 'Latent (nearest-exact)':
      return nearestTaps(inSize, outSize, true);
  }
}

/** Resizes a (C,H,W) float32 latent to (C,outH,outW). */
export function upscaleLatent(
  data: Float32Array,
  shape: readonly [number, number, number],
  size: readonly [number, number],
  mode: Upscaler,
): Float32Array {
  const [c, h, w] = shape;
  const [oh, ow] = size;
  const rows = tapsFor(mode, h, oh);
  const cols = tapsFor(mode, w, ow);
  // along H first into a float64 scratch, then along W
  const mid = new Float64Array(c * oh * w);
  for (let ci = 0; ci < c; ci++) {
    for (let y = 0; y < oh; y++) {
      const { index, weight } = rows[y] as AxisTaps[number];
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let k = 0; k < index.length; k++) {
          acc += (weight[k] as number) * (data[(ci * h + (index[k] as number)) * w + x] as number);
        }
        mid[(ci * oh + y) * w + x] = acc;
      }
    }
  }
  const out = new Float32Array(c * oh * ow);
  for (let ci = 0; ci < c; ci++) {
    for (let y = 0; y < oh; y++) {
      const rowBase = (ci * oh + y) * w;
      for (let x = 0; x < ow; x++) {
        const { index, weight } = cols[x] as AxisTaps[number];
        let acc = 0;
        for (let k = 0; k < index.length; k++)
          acc += (weight[k] as number) * (mid[rowBase + (index[k] as number)] as number);
        out[(ci * oh + y) * ow + x] = acc;
      }
    }
  }
  return out;
}
