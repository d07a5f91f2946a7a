/**
 * The per-step loops over a latent (CFG combine, x·c_in, the samplers' updates), as WebAssembly.
 *
 * Why: V8's optimised JS for a loop over typed arrays passed as arguments costs ~3 ns an element
 * (the arrays' base and length are re-read and bounds-checked on each access), so three passes
 * over 16 K floats took ~150 µs a step at 64×64. The same loops in WebAssembly run over a linear
 * memory with no such checks. The arithmetic is unchanged: each float32 is widened to float64,
 * the same operations run in the same order (WebAssembly neither fuses nor reorders float ops),
 * and the result is rounded to float32 on the store, exactly as the JS loops did, so every result
 * is bit-identical (test/diffusion/wasm-kernels.test.ts checks them against the JS loops).
 *
 * The kernels only reach arrays inside their own memory (`StepArena`, step-arena.ts): a pass puts its latent,
 * the UNet's input and output and the denoised buffers there. Anything else (a test's plain
 * arrays) goes through the JS loops, which stay the reference.
 */

import { at, F64, I32, type KernelFn, kernel, ld2, loop4, moduleBytes, op, V128, v } from './wasm-emit.ts';

const g = op.get;

const kernelFns = (): KernelFn[] => [
  // combine(den, x, c, u; n; σ, cfg): den = x − σ·(eu + cfg·(ec − eu))
  kernel('combine', 4, 2, ({ i, vec, tmp }) => [
    ...ld2(3, i),
    ...op.set(tmp),
    ...at(0, i),
    ...ld2(1, i),
    ...g(vec(0)),
    ...g(tmp),
    ...g(vec(1)),
    ...ld2(2, i),
    ...g(tmp),
    ...v.sub,
    ...v.mul,
    ...v.add,
    ...v.mul,
    ...v.sub,
    ...v.store2,
  ]),
  // scale(x, out; n; s): out = x·s
  kernel('scale', 2, 1, ({ i, vec }) => [...at(1, i), ...ld2(0, i), ...g(vec(0)), ...v.mul, ...v.store2]),
  // scale2(x, out, out2; n; s): out = out2 = x·s (the same float64 product rounded into both)
  kernel('scale2', 3, 1, ({ i, vec, tmp }) => [
    ...ld2(0, i),
    ...g(vec(0)),
    ...v.mul,
    ...op.set(tmp),
    ...at(1, i),
    ...g(tmp),
    ...v.store2,
    ...at(2, i),
    ...g(tmp),
    ...v.store2,
  ]),
  // euler(x, den; n; σ, dt): x = x + ((x − den)/σ)·dt
  kernel('euler', 2, 2, ({ i, vec, tmp }) => [
    ...ld2(0, i),
    ...op.set(tmp),
    ...at(0, i),
    ...g(tmp),
    ...g(tmp),
    ...ld2(1, i),
    ...v.sub,
    ...g(vec(0)),
    ...v.div,
    ...g(vec(1)),
    ...v.mul,
    ...v.add,
    ...v.store2,
  ]),
  // dpm1(x, den; n; ratio, coef): x = ratio·x + coef·den
  kernel('dpm1', 2, 2, ({ i, vec }) => [
    ...at(0, i),
    ...g(vec(0)),
    ...ld2(0, i),
    ...v.mul,
    ...g(vec(1)),
    ...ld2(1, i),
    ...v.mul,
    ...v.add,
    ...v.store2,
  ]),
  // dpm2(x, den, old; n; ratio, coef, a, b): x = ratio·x + coef·(a·den − b·old)
  kernel('dpm2', 3, 4, ({ i, vec }) => [
    ...at(0, i),
    ...g(vec(0)),
    ...ld2(0, i),
    ...v.mul,
    ...g(vec(1)),
    ...g(vec(2)),
    ...ld2(1, i),
    ...v.mul,
    ...g(vec(3)),
    ...ld2(2, i),
    ...v.mul,
    ...v.sub,
    ...v.mul,
    ...v.add,
    ...v.store2,
  ]),
  combineHalfFn(),
  toHalfFn(),
];

/** f32.const */
const f32c = (value: number) => [0x43, ...new Uint8Array(Float32Array.of(value).buffer)];

/**
 * Four float16 bit patterns at (pointer local) + j → f32x4 of their values: the bits moved into a
 * float32's place and scaled by 2^112 (exact, subnormals included), inf and NaN given the float32
 * exponent; the same values as `fromHalfBits` and its table. `k` holds the splatted constants.
 */
const half4 = (ptr: number, j: number, bits: number, k: HalfConsts) => [
  ...op.get(ptr),
  ...op.get(j),
  ...op.iadd,
  ...op.simd(0x5d, 3, 0), // v128.load64_zero
  ...op.simd(0xa9), // i32x4.extend_low_i16x8_u
  ...op.set(bits),
  // (bits & 0x7fff) << 13, as float32, × 2^112
  ...op.get(bits),
  ...op.get(k.mag),
  ...op.simd(0x4e),
  ...op.i32(13),
  ...op.simd(0xab), // i32x4.shl
  ...op.get(k.scale),
  ...op.simd(0xe6), // f32x4.mul
  // | 0x7f800000 where the half's exponent is all ones (inf, NaN)
  ...op.get(bits),
  ...op.get(k.exp),
  ...op.simd(0x4e),
  ...op.get(k.exp),
  ...op.simd(0x37), // i32x4.eq
  ...op.get(k.inf),
  ...op.simd(0x4e),
  ...op.simd(0x50),
  // | sign << 16
  ...op.get(bits),
  ...op.get(k.sign),
  ...op.simd(0x4e),
  ...op.i32(16),
  ...op.simd(0xab),
  ...op.simd(0x50),
];

interface HalfConsts {
  mag: number;
  exp: number;
  inf: number;
  sign: number;
  scale: number;
}

/** The low two lanes of the f32x4 in `local`, widened: f64x2. */
const lowPair = (local: number) => [...op.get(local), ...op.simd(0x5f)];
/** Its high two lanes moved low (i8x16.shuffle), then widened. */
const highPair = (local: number) => [
  ...op.get(local),
  ...op.get(local),
  ...op.simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15),
  ...op.simd(0x5f),
];

/** combineHalf(den, x, c, u, n; σ, cfg): `combine` with eps as float16 bits (c, u), n a multiple of 16. */
function combineHalfFn(): KernelFn {
  // locals 7… : i, j, eu, vs, vc, bits, cu, cc, (15 unused), addr, then the constants
  const [den, x, c, u, n, sigma, cfg, i, j, eu, vs, vc, bits, cu, cc, addr] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16,
  ];
  const k: HalfConsts = { mag: 17, exp: 18, inf: 19, sign: 20, scale: 21 };
  const splatI = (value: number, local: number) => [...op.i32(value), ...op.simd(0x11), ...op.set(local)];
  // one pair: den[pair] = x − σ·(eu + cfg·(ec − eu)), eu / ec from `pick` of cu / cc
  const pairAt = (pick: (local: number) => number[]) => [
    ...pick(cu),
    ...op.set(eu),
    ...op.get(den),
    ...op.get(addr),
    ...op.iadd,
    ...op.get(x),
    ...op.get(addr),
    ...op.iadd,
    ...v.load2,
    ...op.get(vs),
    ...op.get(eu),
    ...op.get(vc),
    ...pick(cc),
    ...op.get(eu),
    ...v.sub,
    ...v.mul,
    ...v.add,
    ...v.mul,
    ...v.sub,
    ...v.store2,
  ];
  return {
    name: 'combineHalf',
    params: [I32, I32, I32, I32, I32, F64, F64],
    results: [],
    locals: [I32, I32, V128, V128, V128, V128, V128, V128, I32, I32, V128, V128, V128, V128, V128],
    body: [
      ...op.get(sigma),
      ...v.splat,
      ...op.set(vs),
      ...op.get(cfg),
      ...v.splat,
      ...op.set(vc),
      ...splatI(0x7fff, k.mag),
      ...splatI(0x7c00, k.exp),
      ...splatI(0x7f800000, k.inf),
      ...splatI(0x8000, k.sign),
      ...f32c(2 ** 112),
      ...op.simd(0x13), // f32x4.splat
      ...op.set(k.scale),
      ...op.i32(0),
      ...op.set(j),
      ...loop4(
        i,
        n,
        [
          ...half4(u, j, bits, k),
          ...op.set(cu),
          ...half4(c, j, bits, k),
          ...op.set(cc),
          ...op.get(i),
          ...op.set(addr),
          ...pairAt(lowPair),
          ...op.get(i),
          ...op.i32(8),
          ...op.iadd,
          ...op.set(addr),
          ...pairAt(highPair),
          ...op.get(j),
          ...op.i32(8),
          ...op.iadd,
          ...op.set(j),
        ],
        16,
      ),
    ],
  };
}

/**
 * toHalf(src, dst, n, start) → the byte offset it stopped at: float32 → float16 bits four at a
 * time from byte `start` of src (n bytes, a multiple of 16), by `toHalfInto`'s round to nearest
 * even for values in the normal half range. It stops at the first four holding a value outside
 * that range (0, subnormal, overflow, NaN) and returns their offset, for `toHalfBits` to convert;
 * n when done.
 */
function toHalfFn(): KernelFn {
  const [src, dst, n, start, i, xv, m, r] = [0, 1, 2, 3, 4, 5, 6, 7];
  // the constants, splatted once into locals 8… (V8 does not hoist a splat out of the loop)
  const CONSTS = [0x7fffffff, 0x38800000, 0x47800000, 0x38000000, 0x8000, 0x0fff, 1];
  const splat = (k: number) => op.get(8 + CONSTS.indexOf(k));
  const splatAll = CONSTS.flatMap((k, q) => [...op.i32(k), ...op.simd(0x11), ...op.set(8 + q)]);
  const and = op.simd(0x4e);
  const or = op.simd(0x50);
  const shrU = op.simd(0xad);
  const add = op.simd(0xae);
  return {
    name: 'toHalf',
    params: [I32, I32, I32, I32],
    results: [I32],
    locals: [I32, V128, V128, V128, ...CONSTS.map(() => V128)],
    body: [
      ...splatAll,
      ...op.get(start),
      ...op.set(i),
      ...op.block,
      ...op.loop,
      ...op.get(i),
      ...op.get(n),
      ...op.igeU,
      ...op.brIf(1),
      ...op.get(src),
      ...op.get(i),
      ...op.iadd,
      ...op.simd(0x00, 0, 0), // v128.load
      ...op.tee(xv),
      ...splat(0x7fffffff),
      ...and,
      ...op.tee(m),
      ...splat(0x38800000),
      ...op.simd(0x40), // i32x4.ge_u
      ...op.get(m),
      ...splat(0x47800000),
      ...op.simd(0x3a), // i32x4.lt_u
      ...and,
      ...op.simd(0xa3), // i32x4.all_true
      ...op.ieqz,
      ...op.ifVoid,
      ...op.get(i),
      ...op.ret,
      ...op.end,
      ...op.get(m),
      ...splat(0x38000000),
      ...op.simd(0xb1), // i32x4.sub
      ...op.set(r),
      // destination: dst + i/2
      ...op.get(dst),
      ...op.get(i),
      ...op.i32(1),
      ...op.ishrU,
      ...op.iadd,
      // sign | ((r + 0x0fff + ((r >>> 13) & 1)) >>> 13)
      ...op.get(xv),
      ...op.i32(16),
      ...shrU,
      ...splat(0x8000),
      ...and,
      ...op.get(r),
      ...splat(0x0fff),
      ...add,
      ...op.get(r),
      ...op.i32(13),
      ...shrU,
      ...splat(1),
      ...and,
      ...add,
      ...op.i32(13),
      ...shrU,
      ...or,
      ...op.tee(r),
      ...op.get(r),
      ...op.simd(0x86), // i16x8.narrow_i32x4_u: the four halves in the low 8 bytes
      ...op.simd(0x5b, 3, 0, 0), // v128.store64_lane 0
      ...op.get(i),
      ...op.i32(16),
      ...op.iadd,
      ...op.set(i),
      ...op.br(0),
      ...op.end,
      ...op.end,
      ...op.get(n),
    ],
  };
}

export interface Exports {
  combineHalf(den: number, x: number, c: number, u: number, n: number, sigma: number, cfg: number): void;
  toHalf(src: number, dst: number, n: number, start: number): number;
  combine(den: number, x: number, c: number, u: number, n: number, sigma: number, cfg: number): void;
  scale(x: number, out: number, n: number, s: number): void;
  scale2(x: number, out: number, out2: number, n: number, s: number): void;
  euler(x: number, den: number, n: number, sigma: number, dt: number): void;
  dpm1(x: number, den: number, n: number, ratio: number, coef: number): void;
  dpm2(
    x: number,
    den: number,
    old: number,
    n: number,
    ratio: number,
    coef: number,
    a: number,
    b: number,
  ): void;
}

// The few WebAssembly APIs used (the project's lib has no WebAssembly types of its own).
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;
export function kernelModule(): object {
  compiled ??= new wasm.Module(moduleBytes(kernelFns()));
  return compiled;
}
