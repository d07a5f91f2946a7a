// A minimal WebAssembly emitter (one imported memory, i32 / f64 / v128 locals): enough for the
// step kernels in wasm-kernels.ts, built in code so that no toolchain is needed.

export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
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

export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
export const name = (s: string) => [...uleb(s.length), ...[...s].map((ch) => ch.charCodeAt(0))];

/** Instructions (only those the kernels use). */
export const op = {
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
export const v = {
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

export interface KernelFn {
  name: string;
  params: number[];
  results: number[];
  locals: number[];
  body: number[];
}

export function moduleBytes(fns: KernelFn[]): Uint8Array {
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
export function loop4(iLocal: number, nLocal: number, body: number[], step = 4): number[] {
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
export const at = (ptr: number, i: number) => [...op.get(ptr), ...op.get(i), ...op.iadd];

// Every kernel takes byte pointers and a byte count `n` (4 × the element count, a multiple of 8:
// the loops go two floats at a time) and splats its scalars once into v128 locals.

/** two float32 at (pointer local) + i, widened to f64x2. */
export const ld2 = (ptr: number, i: number) => [...op.get(ptr), ...op.get(i), ...op.iadd, ...v.load2];

/**
 * A kernel over pairs: `pointers` i32 params, then `n`, then `scalars` f64 params; the body sees
 * each scalar splatted (local `vec(j)`) and the byte index `i`.
 */
export function kernel(
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
