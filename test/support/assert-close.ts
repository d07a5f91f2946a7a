// One closeness check for every numeric reference test: |a − e| ≤ atol + rtol·|e| per element,
// reporting the first failing index (transformers.js once passed a tolerance in the wrong slot).
export interface Tolerance {
  atol: number;
  rtol?: number;
}

export function closeFailure(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol, rtol = 0 }: Tolerance,
): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length} ≠ expected ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const bound = atol + rtol * Math.abs(e);
    if (!(Math.abs(a - e) <= bound)) {
      return `index ${i}: got ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > ${bound})`;
    }
  }
  return undefined;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): void {
  const failure = closeFailure(actual, expected, tol);
  if (failure) throw new Error(`not close: ${failure}`);
}
