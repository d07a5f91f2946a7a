// IEEE half ↔ single conversion at the ONNX boundary (Node 20 has no Float16Array).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → float16 bits, round to nearest even (as numpy/torch `.half()`). */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct
  return sign | h;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a number to the nearest float16 value (what a `.half()` cast keeps). */
export function roundToHalf(value: number): number {
  return fromHalfBits(toHalfBits(value));
}

/** float16 bits → float32 value for every one of the 65 536 patterns, built on first use (256 KB). */
let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = fromHalfBits(h);
  }
  return halfTable;
}

/**
 * `src[0..n)` → float16 bits into `dst[at..at+n)`, rounding as `toHalfBits`. Values in the normal
 * half range (nearly all of a latent) take a branch-free round-to-nearest-even on the float's bits;
 * the rest go through `toHalfBits`. Runs on every UNet step of an fp16 model: no allocation per value.
 */
export function toHalfInto(src: Float32Array, dst: Uint16Array, n = src.length, at = 0): void {
  const bits = new Int32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = bits[i] as number;
    const m = x & 0x7fffffff;
    if (m >= 0x38800000 && m < 0x47800000) {
      // rebias the exponent (127 → 15), then add just under half an ulp plus the kept bit's parity
      const r = m - 0x38000000;
      dst[at + i] = ((x >>> 16) & 0x8000) | ((r + 0x0fff + ((r >>> 13) & 1)) >>> 13);
    } else {
      dst[at + i] = toHalfBits(src[i] as number);
    }
  }
}

/** The float32 value of float16 bits, by table (for loops that convert as they compute). */
export function halfTableFor(): Float32Array {
  return halfToFloatTable();
}

/** float16 bits `src[0..n)` → float32 values into `dst`, by table. */
export function fromHalfInto(src: Uint16Array, dst: Float32Array, n = src.length): void {
  const table = halfToFloatTable();
  for (let i = 0; i < n; i++) dst[i] = table[src[i] as number] as number;
}

export function toHalf(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  toHalfInto(data, out);
  return out;
}

export function fromHalf(data: Uint16Array): Float32Array {
  const out = new Float32Array(data.length);
  fromHalfInto(data, out);
  return out;
}
