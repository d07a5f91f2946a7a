import { PhiloxGenerator } from './philox.ts';
import { TorchCpuGenerator } from './torch-cpu.ts';

/** `cpu` = torch CPU generator; `nv` = Philox, what A1111's default "GPU" source gives on NVIDIA. */
export type NoiseSource = 'cpu' | 'nv';
export const NOISE_SOURCES: readonly NoiseSource[] = ['cpu', 'nv'];

export interface NormalGenerator {
  randn(n: number): Float32Array;
}

export function createGenerator(source: NoiseSource, seed: number): NormalGenerator {
  return source === 'cpu' ? new TorchCpuGenerator(seed) : new PhiloxGenerator(seed);
}

export interface NoiseSpec {
  source: NoiseSource;
  seed: number;
  /** Variation seed (A1111 "Variation seed"); used only when subseedStrength ≠ 0. */
  subseed?: number;
  subseedStrength?: number;
  /** Eta noise seed delta: reseeds the stream after the first draw (ancestral noise). */
  ensd?: number;
}

/**
 * Spherical interpolation as A1111's `rng.py::slerp`, normalising along dim 1 (H) of a (C,H,W)
 * tensor. Falls back to its (sic) linear mix when the noises are almost parallel.
 */
export function slerp(
  val: number,
  low: Float32Array,
  high: Float32Array,
  shape: readonly [number, number, number],
): Float32Array {
  const [c, h, w] = shape;
  const dots = new Float64Array(c * w);
  for (let ci = 0; ci < c; ci++) {
    for (let wi = 0; wi < w; wi++) {
      let nl = 0;
      let nh = 0;
      let dot = 0;
      for (let hi = 0; hi < h; hi++) {
        const k = (ci * h + hi) * w + wi;
        const l = low[k] as number;
        const g = high[k] as number;
        nl += l * l;
        nh += g * g;
        dot += l * g;
      }
      dots[ci * w + wi] = dot / Math.sqrt(nl) / Math.sqrt(nh);
    }
  }
  const out = new Float32Array(low.length);
  const mean = dots.reduce((a, b) => a + b, 0) / dots.length;
  if (mean > 0.9995) {
    for (let k = 0; k < out.length; k++) out[k] = (low[k] as number) * val + (high[k] as number) * (1 - val);
    return out;
  }
  for (let ci = 0; ci < c; ci++) {
    for (let wi = 0; wi < w; wi++) {
      const omega = Math.acos(dots[ci * w + wi] as number);
      const so = Math.sin(omega);
      const a = Math.sin((1 - val) * omega) / so;
      const b = Math.sin(val * omega) / so;
      for (let hi = 0; hi < h; hi++) {
        const k = (ci * h + hi) * w + wi;
        out[k] = a * (low[k] as number) + b * (high[k] as number);
      }
    }
  }
  return out;
}

/**
 * A1111's `ImageRNG` for one image: `first()` is the initial latent noise (with the variation
 * seed mixed in), `next()` continues the stream for ancestral samplers.
 */
export class ImageRng {
  private generator: NormalGenerator;
  private readonly numel: number;

  constructor(
    readonly shape: readonly [number, number, number],
    private readonly spec: NoiseSpec,
  ) {
    this.numel = shape[0] * shape[1] * shape[2];
    this.generator = createGenerator(spec.source, spec.seed);
  }

  first(): Float32Array {
    const { source, seed, subseed = 0, subseedStrength = 0, ensd = 0 } = this.spec;
    let noise = this.generator.randn(this.numel);
    if (subseedStrength !== 0) {
      const subnoise = createGenerator(source, subseed).randn(this.numel);
      noise = slerp(subseedStrength, noise, subnoise, this.shape);
    }
    if (ensd !== 0) this.generator = createGenerator(source, seed + ensd);
    return noise;
  }

  next(): Float32Array {
    return this.generator.randn(this.numel);
  }
}
