/**
 * Prompt → CLIP conditioning as A1111's `FrozenCLIPEmbedderWithCustomWords` builds it: one
 * text-encoder row per 77-token chunk, Original emphasis per chunk, chunks joined along tokens.
 */
import * as ort from 'onnxruntime-node';
import { floatsOf } from './model/float-tensor.ts';
import type { SdModel } from './model/sd-model.ts';
import { CHUNK_LENGTH, promptToChunks } from './prompt/chunks.ts';
import { applyEmphasis } from './prompt/emphasis.ts';

export interface Conditioning {
  /** [1, 77·chunks, hidden], float32. */
  data: Float32Array;
  chunks: number;
  hidden: number;
  /** Tokens the prompt used (A1111's "n/75" counter). */
  tokenCount: number;
}

const TOKENS_PER_CHUNK = CHUNK_LENGTH + 2;

export async function encodePrompt(model: SdModel, prompt: string): Promise<Conditioning> {
  const { chunks, tokenCount } = promptToChunks(prompt, model.tokenizer);
  const { session, idsType, output } = model.textEncoder;
  const n = chunks.length * TOKENS_PER_CHUNK;
  const flat = chunks.flatMap((c) => c.tokens);
  const ids =
    idsType === 'int64'
      ? new ort.Tensor(
          'int64',
          BigInt64Array.from(flat, (v) => BigInt(v)),
          [chunks.length, TOKENS_PER_CHUNK],
        )
      : new ort.Tensor('int32', Int32Array.from(flat), [chunks.length, TOKENS_PER_CHUNK]);
  const result = await session.run({ input_ids: ids });
  // a fresh output buffer of ours: emphasis may scale it in place
  const data = floatsOf(result[output] as ort.Tensor);
  const hidden = data.length / n;
  chunks.forEach((chunk, i) => {
    const span = TOKENS_PER_CHUNK * hidden;
    applyEmphasis(data.subarray(i * span, (i + 1) * span), chunk.multipliers, hidden);
  });
  return { data, chunks: chunks.length, hidden, tokenCount };
}
