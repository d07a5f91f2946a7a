/**
 * A1111's "NV" noise source (`modules/rng_philox.py`): a CPU emulation of CUDA `torch.randn`,
 * Philox4x32-10 keyed by the seed, one counter per element, Box–Muller in float64.
 */
const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_POW32_INV = 2 ** -32;
// float32(2.3283064e-10 * 6.2831855), as numpy computes the constant
const TWO_POW32_INV_2PI = Math.fround(Math.fround(2.3283064e-10) * Math.fround(6.2831855));

/** High 32 bits of the 64-bit product of two uint32. */
function mulhi(a: number, b: number): number {
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const lh = aL * bH;
  const hl = aH * bL;
  const mid = ((aL * bL) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (aH * bH + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

export class PhiloxGenerator {
  private offset = 0;
  private readonly keyLo: number;
  private readonly keyHi: number;

  constructor(seed: number) {
    this.keyLo = seed >>> 0;
    this.keyHi = Math.floor(seed / 2 ** 32) >>> 0;
  }

  /** One call of `Generator.randn(shape)`: n normals at the current offset, then offset += 1. */
  randn(n: number): Float32Array {
    const out = new Float32Array(n);
    const offset = this.offset++;
    for (let i = 0; i < n; i++) {
      let c0 = offset;
      let c1 = 0;
      let c2 = i;
      let c3 = 0;
      let k0 = this.keyLo;
      let k1 = this.keyHi;
      for (let round = 0; round < 10; round++) {
        if (round > 0) {
          k0 = (k0 + W0) >>> 0;
          k1 = (k1 + W1) >>> 0;
        }
        const hi0 = mulhi(c0, M0);
        const lo0 = Math.imul(c0, M0) >>> 0;
        const hi1 = mulhi(c2, M1);
        const lo1 = Math.imul(c2, M1) >>> 0;
        c0 = (hi1 ^ c1 ^ k0) >>> 0;
        c1 = lo1;
        c2 = (hi0 ^ c3 ^ k1) >>> 0;
        c3 = lo0;
      }
      const u = c0 * TWO_POW32_INV + TWO_POW32_INV / 2;
      const v = c1 * TWO_POW32_INV_2PI + TWO_POW32_INV_2PI / 2;
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.sin(v);
    }
    return out;
  }
}
