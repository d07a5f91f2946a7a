// Paths and loaders for the reference data in test/fixtures (see its README for provenance).
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const FIXTURES = path.resolve(import.meta.dirname, '..', 'fixtures');
export const CLIP_TOKENIZER_DIR = path.join(FIXTURES, 'clip-tokenizer', 'tokenizer');

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8')) as T;
}
