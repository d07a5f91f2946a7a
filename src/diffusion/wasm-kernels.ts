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
 * The kernels only reach arrays inside their own memory (`StepArena`): a pass puts its latent,
 * the UNet's input and output and the denoised buffers there. Anything else (a test's plain
 * arrays) goes through the JS loops, which stay the reference.
 */

import { halfTableFor, toHalfBits, toHalfInto } from './model/fp16.ts';

// ——— a minimal WebAssembly emitter (one imported memory, i32 / f64 parameters) ———

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => [...uleb(s.length), ...[...s].map((ch) => ch.charCodeAt(0))];

/** Instructions (only those the kernels use). */
const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (n: number) => [0x41, ...sleb(n)],
  f64: (v: number) => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)],
  f32Load: [0x2a, 2, 0],
  f32Store: [0x38, 2, 0],
  u16Load: [0x2f, 1, 0],
  i32Load: [0x28, 2, 0],
  u16Store: [0x3b, 1, 0],
  promote: [0xbb],
  demote: [0xb6],
  fadd: [0xa0],
  fsub: [0xa1],
  fmul: [0xa2],
  fdiv: [0xa3],
  iadd: [0x6a],
  isub: [0x6b],
  iand: [0x71],
  ior: [0x72],
  ishl: [0x74],
  ishrU: [0x76],
  ieqz: [0x45],
  igeU: [0x4f],
  iltU: [0x49],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  ifVoid: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  ret: [0x0f],
  // SIMD over two float64 lanes: two float32 in, widened; two float64 out, narrowed
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};
const v = {
  /** two float32 at the address on the stack → f64x2 */
  load2: [...op.simd(0x5d, 3, 0), ...op.simd(0x5f)],
  /** f64x2 → two float32 stored at the address below it on the stack */
  store2: [...op.simd(0x5e), ...op.simd(0x5b, 3, 0, 0)],
  splat: op.simd(0x14),
  add: op.simd(0xf0),
  sub: op.simd(0xf1),
  mul: op.simd(0xf2),
  div: op.simd(0xf3),
};

interface KernelFn {
  name: string;
  params: number[];
  results: number[];
  locals: number[];
  body: number[];
}

function moduleBytes(fns: KernelFn[]): Uint8Array {
  const types = section(
    1,
    vec(fns.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))])),
  );
  // (import "k" "mem" (memory 1))
  const imports = section(2, vec([[...name('k'), ...name('mem'), 0x02, 0x00, 0x01]]));
  const funcs = section(3, vec(fns.map((_, i) => uleb(i))));
  const exports = section(7, vec(fns.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])));
  const code = section(
    10,
    vec(
      fns.map((f) => {
        const body = [...vec(f.locals.map((l) => [1, l])), ...f.body, ...op.end];
        return [...uleb(body.length), ...body];
      }),
    ),
  );
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...types,
    ...imports,
    ...funcs,
    ...exports,
    ...code,
  ]);
}

/**
 * `for (i = 0; i < bytes; i += 4) body` where `i` is local `iLocal` and `bytes` local `nLocal`
 * (byte offsets: element k of a float32 array at `p` is at p + i).
 */
function loop4(iLocal: number, nLocal: number, body: number[], step = 4): number[] {
  return [
    ...op.i32(0),
    ...op.set(iLocal),
    ...op.block,
    ...op.loop,
    ...op.get(iLocal),
    ...op.get(nLocal),
    ...op.igeU,
    ...op.brIf(1),
    ...body,
    ...op.get(iLocal),
    ...op.i32(step),
    ...op.iadd,
    ...op.set(iLocal),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

/** address (pointer local) + i, for a store. */
const at = (ptr: number, i: number) => [...op.get(ptr), ...op.get(i), ...op.iadd];

// Every kernel takes byte pointers and a byte count `n` (4 × the element count, a multiple of 8:
// the loops go two floats at a time) and splats its scalars once into v128 locals.

/** two float32 at (pointer local) + i, widened to f64x2. */
const ld2 = (ptr: number, i: number) => [...op.get(ptr), ...op.get(i), ...op.iadd, ...v.load2];

/**
 * A kernel over pairs: `pointers` i32 params, then `n`, then `scalars` f64 params; the body sees
 * each scalar splatted (local `vec(j)`) and the byte index `i`.
 */
function kernel(
  fnName: string,
  pointers: number,
  scalars: number,
  body: (p: { i: number; vec: (j: number) => number; tmp: number }) => number[],
): KernelFn {
  const n = pointers;
  const firstScalar = pointers + 1;
  const i = firstScalar + scalars;
  const vecAt = (j: number) => i + 1 + j;
  const tmp = i + 1 + scalars;
  const splats = Array.from({ length: scalars }, (_, j) => [
    ...op.get(firstScalar + j),
    ...v.splat,
    ...op.set(vecAt(j)),
  ]).flat();
  return {
    name: fnName,
    params: [...Array(pointers).fill(I32), I32, ...Array(scalars).fill(F64)],
    results: [],
    locals: [I32, ...Array(scalars + 1).fill(V128)],
    body: [...splats, ...loop4(i, n, body({ i, vec: (j) => vecAt(j), tmp }), 8)],
  };
}

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

interface Exports {
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
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;
function kernelModule(): object {
  compiled ??= new wasm.Module(moduleBytes(kernelFns()));
  return compiled;
}

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
