/**
 * The SD 1.x noise schedule as A1111 v1.10 builds it: `ldm/.../util.py::make_beta_schedule`
 * ("linear", float64), `ddpm.py::register_schedule` (alphas_cumprod stored float32) and
 * k-diffusion `external.py::DiscreteEpsDDPMDenoiser` (sigmas, log_sigmas in float32).
 */
const f = Math.fround;

export const SD1_LINEAR_START = 0.00085;
export const SD1_LINEAR_END = 0.012;
export const SD1_TIMESTEPS = 1000;

/** torch.linspace on the CPU: the first half counts up from start, the second half down from end. */
export function torchLinspace(start: number, end: number, steps: number, float32 = true): number[] {
  const out: number[] = new Array(steps);
  if (steps === 1) {
    out[0] = float32 ? f(start) : start;
    return out;
  }
  const step = (end - start) / (steps - 1);
  const stepF = float32 ? f(step) : step;
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    const v = i < half ? start + i * stepF : end - (steps - 1 - i) * stepF;
    out[i] = float32 ? f(v) : v;
  }
  return out;
}

export class DiscreteSchedule {
  readonly alphasCumprod: Float32Array;
  readonly sigmas: Float32Array;
  readonly logSigmas: Float32Array;

  constructor(linearStart = SD1_LINEAR_START, linearEnd = SD1_LINEAR_END, timesteps = SD1_TIMESTEPS) {
    const roots = torchLinspace(Math.sqrt(linearStart), Math.sqrt(linearEnd), timesteps, false);
    this.alphasCumprod = new Float32Array(timesteps);
    this.sigmas = new Float32Array(timesteps);
    this.logSigmas = new Float32Array(timesteps);
    let cumprod = 1;
    for (let i = 0; i < timesteps; i++) {
      const beta = (roots[i] as number) ** 2;
      cumprod *= 1 - beta;
      const ac = f(cumprod);
      this.alphasCumprod[i] = ac;
      const sigma = f(Math.sqrt(f(f(1 - ac) / ac)));
      this.sigmas[i] = sigma;
      this.logSigmas[i] = f(Math.log(sigma));
    }
  }

  get sigmaMin(): number {
    return this.sigmas[0] as number;
  }

  get sigmaMax(): number {
    return this.sigmas[this.sigmas.length - 1] as number;
  }

  /** k-diffusion `sigma_to_t`, interpolated (quantize=False): the fractional timestep of σ. */
  sigmaToT(sigma: number): number {
    const ls = f(Math.log(sigma));
    const n = this.logSigmas.length;
    let low = 0;
    for (let k = 0; k < n; k++) if ((this.logSigmas[k] as number) <= ls) low = k;
    low = Math.min(low, n - 2);
    const lo = this.logSigmas[low] as number;
    const hi = this.logSigmas[low + 1] as number;
    const w = Math.min(1, Math.max(0, f(f(lo - ls) / f(lo - hi))));
    return f(f((1 - w) * low) + f(w * (low + 1)));
  }

  /** k-diffusion `sigma_to_t(quantize=True)`: the index of the nearest log σ in the table. */
  sigmaToNearestT(sigma: number): number {
    const ls = Math.log(sigma);
    let best = 0;
    for (let k = 1; k < this.logSigmas.length; k++) {
      if (Math.abs((this.logSigmas[k] as number) - ls) < Math.abs((this.logSigmas[best] as number) - ls))
        best = k;
    }
    return best;
  }

  /** k-diffusion `t_to_sigma`: log-linear interpolation between table entries. */
  tToSigma(t: number): number {
    const lo = Math.floor(t);
    const hi = Math.ceil(t);
    const w = f(t - lo);
    const ls = f(f((1 - w) * (this.logSigmas[lo] as number)) + f(w * (this.logSigmas[hi] as number)));
    return f(Math.exp(ls));
  }
}

export const SD1_SCHEDULE = new DiscreteSchedule();
