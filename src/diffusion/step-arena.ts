// The step buffers of a pass in one WebAssembly memory, with the kernels over them; the JS loops
// (jsKernels) are the reference and the fallback for arrays elsewhere.
import { halfTableFor, toHalfBits, toHalfInto } from './model/fp16.ts';
import { type Exports, kernelModule, type WasmMemory, wasm } from './wasm-kernels.ts';

/**
 * The loops of a step, over float32 arrays of equal length `n` (`at`: where the second array's
 * row starts). The JS versions are the reference; `StepArena.kernels` runs the same in WebAssembly.
 */
export interface StepKernels {
  /** den = x − σ·(eu + cfg·(ec − eu)), ec = c[k], eu = u[at + k]. */
  combine(
    den: Float32Array,
    x: Float32Array,
    sigma: number,
    cfg: number,
    c: Float32Array,
    u: Float32Array,
    at: number,
    n: number,
  ): void;
  /** out[k] = x[k]·s for k < n, and out[k + n] too when `copies` is 2. */
  scaleRows(x: Float32Array, s: number, out: Float32Array, n: number, copies: number): void;
  /** Euler: x = x + ((x − den)/σ)·dt. */
  euler(x: Float32Array, den: Float32Array, sigma: number, dt: number): void;
  /** DPM++ 2M's first order step: x = ratio·x + coef·den. */
  dpm1(x: Float32Array, den: Float32Array, ratio: number, coef: number): void;
  /** DPM++ 2M's second order step: x = ratio·x + coef·(a·den − b·old). */
  dpm2(
    x: Float32Array,
    den: Float32Array,
    old: Float32Array,
    ratio: number,
    coef: number,
    a: number,
    b: number,
  ): void;
  /** `combine` for an fp16 UNet: eps as float16 bits (read through `halfTableFor`'s table). */
  combineHalf(
    den: Float32Array,
    x: Float32Array,
    sigma: number,
    cfg: number,
    c: Uint16Array,
    u: Uint16Array,
    at: number,
    n: number,
  ): void;
  /** `toHalfInto(src, dst, n)`: float32 → float16 bits. */
  toHalf(src: Float32Array, dst: Uint16Array, n: number): void;
}

export const jsKernels: StepKernels = {
  combine(den, x, sigma, cfg, c, u, at, n) {
    for (let k = 0; k < n; k++) {
      const eu = u[at + k] as number;
      den[k] = (x[k] as number) - sigma * (eu + cfg * ((c[k] as number) - eu));
    }
  },
  scaleRows(x, s, out, n, copies) {
    if (copies === 2) {
      for (let k = 0; k < n; k++) {
        const v = (x[k] as number) * s;
        out[k] = v;
        out[k + n] = v;
      }
    } else {
      for (let k = 0; k < n; k++) out[k] = (x[k] as number) * s;
    }
  },
  euler(x, den, sigma, dt) {
    for (let k = 0; k < x.length; k++)
      x[k] = (x[k] as number) + (((x[k] as number) - (den[k] as number)) / sigma) * dt;
  },
  dpm1(x, den, ratio, coef) {
    for (let k = 0; k < x.length; k++) x[k] = ratio * (x[k] as number) + coef * (den[k] as number);
  },
  dpm2(x, den, old, ratio, coef, a, b) {
    for (let k = 0; k < x.length; k++) {
      x[k] = ratio * (x[k] as number) + coef * (a * (den[k] as number) - b * (old[k] as number));
    }
  },
  combineHalf(den, x, sigma, cfg, c, u, at, n) {
    const table = halfTableFor();
    for (let k = 0; k < n; k++) {
      const eu = table[u[at + k] as number] as number;
      den[k] = (x[k] as number) - sigma * (eu + cfg * ((table[c[k] as number] as number) - eu));
    }
  },
  toHalf(src, dst, n) {
    toHalfInto(src, dst, n);
  },
};

/**
 * One WebAssembly memory holding a pass's step buffers, sized once (it never grows, so views on
 * it stay valid and onnxruntime may read and write them directly), with the kernels over it.
 * Arrays elsewhere, or of odd length, take the JS loops.
 */
export class StepArena {
  private readonly memory: WasmMemory;
  private readonly k: Exports;
  private top = 0;
  readonly kernels: StepKernels;

  /** `bytes`: the most the pass will take from `f32` / `u16` (each rounded up to 16 bytes). */
  constructor(bytes: number) {
    this.memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
    this.k = new wasm.Instance(kernelModule(), { k: { mem: this.memory } }).exports as unknown as Exports;
    const k = this.k;
    const buffer = this.memory.buffer;
    // byte address of `a` in this memory when it is there and holds whole pairs of floats
    const addr = (a: Float32Array, n: number) => (a.buffer === buffer && n % 2 === 0 ? a.byteOffset : -1);
    const mine = (...as: number[]) => as.every((p) => p >= 0);
    this.kernels = {
      combine(den, x, sigma, cfg, c, u, at, n) {
        const pd = addr(den, n);
        const px = addr(x, n);
        const pc = addr(c, n);
        const pu = addr(u, n);
        if (mine(pd, px, pc, pu) && den.length >= n && x.length >= n && c.length >= n && u.length >= at + n) {
          k.combine(pd, px, pc, pu + 4 * at, 4 * n, sigma, cfg);
        } else jsKernels.combine(den, x, sigma, cfg, c, u, at, n);
      },
      scaleRows(x, s, out, n, copies) {
        const px = addr(x, n);
        const po = addr(out, n);
        if (mine(px, po) && x.length >= n && out.length >= copies * n) {
          if (copies === 2) k.scale2(px, po, po + 4 * n, 4 * n, s);
          else k.scale(px, po, 4 * n, s);
        } else jsKernels.scaleRows(x, s, out, n, copies);
      },
      euler(x, den, sigma, dt) {
        const n = x.length;
        const px = addr(x, n);
        const pd = addr(den, n);
        if (mine(px, pd) && den.length >= n) k.euler(px, pd, 4 * n, sigma, dt);
        else jsKernels.euler(x, den, sigma, dt);
      },
      dpm1(x, den, ratio, coef) {
        const n = x.length;
        const px = addr(x, n);
        const pd = addr(den, n);
        if (mine(px, pd) && den.length >= n) k.dpm1(px, pd, 4 * n, ratio, coef);
        else jsKernels.dpm1(x, den, ratio, coef);
      },
      dpm2(x, den, old, ratio, coef, a, b) {
        const n = x.length;
        const px = addr(x, n);
        const pd = addr(den, n);
        const po = addr(old, n);
        if (mine(px, pd, po) && den.length >= n && old.length >= n)
          k.dpm2(px, pd, po, 4 * n, ratio, coef, a, b);
        else jsKernels.dpm2(x, den, old, ratio, coef, a, b);
      },
      combineHalf(den, x, sigma, cfg, c, u, at, n) {
        const here = (a: ArrayBufferView) => a.buffer === buffer;
        if (
          n % 4 === 0 &&
          here(den) &&
          here(x) &&
          here(c) &&
          here(u) &&
          den.length >= n &&
          x.length >= n &&
          c.length >= n &&
          u.length >= at + n
        ) {
          k.combineHalf(den.byteOffset, x.byteOffset, c.byteOffset, u.byteOffset + 2 * at, 4 * n, sigma, cfg);
        } else jsKernels.combineHalf(den, x, sigma, cfg, c, u, at, n);
      },
      toHalf(src, dst, n) {
        if (
          n % 4 !== 0 ||
          src.buffer !== buffer ||
          dst.buffer !== buffer ||
          src.length < n ||
          dst.length < n
        ) {
          jsKernels.toHalf(src, dst, n);
          return;
        }
        const end = 4 * n;
        // the kernel stops at four values outside the normal half range: those go one by one
        for (let at = k.toHalf(src.byteOffset, dst.byteOffset, end, 0); at < end; ) {
          const e = at >> 2;
          for (let q = e; q < e + 4; q++) dst[q] = toHalfBits(src[q] as number);
          at = k.toHalf(src.byteOffset, dst.byteOffset, end, at + 16);
        }
      },
    };
  }

  /** Whether `a` lies in this arena's memory (so the kernels, not the JS loops, run over it). */
  holds(a: ArrayBufferView): boolean {
    return a.buffer === this.memory.buffer;
  }

  /** Room for n float32 in the memory (zeroed). */
  f32(n: number): Float32Array {
    return new Float32Array(this.memory.buffer, this.take(4 * n), n);
  }

  /** Room for n float16 bit patterns in the memory (zeroed). */
  u16(n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, this.take(2 * n), n);
  }

  private take(bytes: number): number {
    const at = this.top;
    const end = at + Math.ceil(bytes / 16) * 16;
    if (end > this.memory.buffer.byteLength)
      throw new RangeError(`StepArena: ${end} bytes asked of ${this.memory.buffer.byteLength}`);
    this.top = end;
    return at;
  }

  /** Bytes `f32(n)` takes, for sizing an arena. */
  static bytesF32(n: number): number {
    return Math.ceil((4 * n) / 16) * 16;
  }

  static bytesU16(n: number): number {
    return Math.ceil((2 * n) / 16) * 16;
  }
}
