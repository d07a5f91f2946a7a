// Temporary folders as a running or killed import leaves them, with the times of their files set
// (the clean-up judges a folder by the newest change anywhere in it).
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ABANDONED_AFTER_MS } from '../../src/diffusion/model/left-behind.ts';

/** Old enough to count as abandoned, with a wide margin. */
export const LONG_AGO_MS = 2 * ABANDONED_AFTER_MS;

/** Sets the times of `dir` and everything in it to `ageMs` ago (the contents first: they do not touch it). */
export function backdate(dir: string, ageMs: number): void {
  const at = new Date(Date.now() - ageMs);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) backdate(file, ageMs);
    else utimesSync(file, at, at);
  }
  utimesSync(dir, at, at);
}

/** A half-written import: a part's folder with its weights, all last changed `ageMs` ago. */
export function makeTemporaryFolder(dir: string, ageMs: number): string {
  const weights = path.join(dir, 'unet', 'model.onnx_data');
  mkdirSync(path.dirname(weights), { recursive: true });
  writeFileSync(weights, 'x');
  backdate(dir, ageMs);
  return weights;
}
