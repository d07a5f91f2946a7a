/**
 * A1111's "Original" emphasis (`sd_emphasis.py::EmphasisOriginal.after_transformers`): scale each
 * token's embedding by its multiplier, then rescale the whole chunk so its mean is unchanged.
 */
export function applyEmphasis(z: Float32Array, multipliers: readonly number[], hidden: number): void {
  if (multipliers.every((m) => m === 1)) return;
  let before = 0;
  for (const v of z) before += v;
  let after = 0;
  for (let t = 0; t < multipliers.length; t++) {
    const m = multipliers[t] as number;
    for (let k = t * hidden; k < (t + 1) * hidden; k++) {
      const v = (z[k] as number) * m;
      z[k] = v;
      after += Math.fround(v);
    }
  }
  const restore = before / after;
  for (let k = 0; k < z.length; k++) z[k] = (z[k] as number) * restore;
}
