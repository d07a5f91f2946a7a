import { MT19937 } from './mt19937.ts';

const f = Math.fround;
const TWO_PI = 2 * Math.PI;

/**
 * torch's CPU `normal_fill_16` on 16 consecutive uniforms (`aten/src/ATen/native/cpu/
 * DistributionTemplates.h`), scalar float32 variant: Box–Muller pairs (j, j+8).
 * AVX2 builds use Cephes-style log/sincos and can differ by up to 2 ulp.
 */
function normalFill16(data: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - (data[at + j] as number));
    const u2 = data[at + j + 8] as number;
    const radius = f(Math.sqrt(f(-2 * f(Math.log(u1)))));
    const theta = f(TWO_PI * u2);
    data[at + j] = f(radius * f(Math.cos(theta)));
    data[at + j + 8] = f(radius * f(Math.sin(theta)));
  }
}

/**
 * A torch CPU generator: `torch.Generator().manual_seed(seed)`; each `randn(n)` continues the
 * stream exactly like successive `torch.randn(shape, generator=g)` calls (float32, n ≥ 16).
 */
export class TorchCpuGenerator {
  private readonly mt: MT19937;

  constructor(seed: number) {
    this.mt = new MT19937(seed);
  }

  /** `uniform_real_distribution<float>(0,1)`: the low 24 bits of one 32-bit draw. */
  private uniform(): number {
    return (this.mt.nextU32() & 0xffffff) * 2 ** -24;
  }

  randn(n: number): Float32Array {
    if (n < 16) throw new RangeError(`torch CPU randn emulation needs at least 16 values, got ${n}`);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.uniform();
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(data, i);
    if (n % 16 !== 0) {
      // torch redraws the last 16 values and transforms them as one block
      const tail = n - 16;
      for (let i = 0; i < 16; i++) data[tail + i] = this.uniform();
      normalFill16(data, tail);
    }
    return data;
  }
}
