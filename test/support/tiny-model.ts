// The tiny model (src/diffusion/model/tiny-model.ts) with the real SD 1.x CLIP tokenizer from
// test/fixtures, as every test that loads one wants it.
import {
  type TinyModelFacts,
  type TinyModelOptions,
  writeTinyModel as writeWithTokenizer,
} from '../../src/diffusion/model/tiny-model.ts';
import { CLIP_TOKENIZER_DIR } from './fixtures.ts';

export type { TinyModelFacts };

export function writeTinyModel(dir: string, options: Omit<TinyModelOptions, 'tokenizerDir'>): TinyModelFacts {
  return writeWithTokenizer(dir, { ...options, tokenizerDir: CLIP_TOKENIZER_DIR });
}
