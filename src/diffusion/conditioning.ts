/**
 * Prompt → CLIP conditioning as A1111's `FrozenCLIPEmbedderWithCustomWords` builds it: one
 * text-encoder row per 77-token chunk, Original emphasis per chunk, chunks joined along tokens.
 */
import * as ort from 'onnxruntime-node';
import { floatsOf } from './model/float-tensor.ts';
import type { SdModel } from './model/sd-model.ts';
import { CHUNK_LENGTH, promptToChunks, type TokenizedPrompt } from './prompt/chunks.ts';
import { applyEmphasis } from './prompt/emphasis.ts';
import { RequestError } from './request-error.ts';

export interface Conditioning {
  /** [1, 77·chunks, hidden], float32. */
  data: Float32Array;
  chunks: number;
  hidden: number;
  /** Tokens the prompt used (A1111's "n/75" counter). */
  tokenCount: number;
}

const TOKENS_PER_CHUNK = CHUNK_LENGTH + 2;

/**
 * The most 75-token chunks a prompt may use. A1111 has no cap, but every chunk adds 77 tokens to
 * the UNet's cross-attention context at every step: 10 chunks (a 770-token context, three times
 * the longest prompts in common use) keep that memory within 10× a short prompt's, where 150
 * chunks ("a, " × 5500) would need gigabytes per attention at hires sizes.
 */
export const MAX_PROMPT_CHUNKS = 10;

/** A1111's chunking of `text`, refused with a RequestError naming `option` past MAX_PROMPT_CHUNKS. */
export function tokenizePrompt(model: SdModel, option: string, text: string): TokenizedPrompt {
  const tokenized = promptToChunks(text, model.tokenizer);
  if (tokenized.chunks.length > MAX_PROMPT_CHUNKS) {
    throw new RequestError(
      option,
      `must fit in ${MAX_PROMPT_CHUNKS} chunks of ${CHUNK_LENGTH} tokens, each BREAK starting a new one (got ${tokenized.chunks.length} chunks)`,
    );
  }
  return tokenized;
}

/** One text-encoder batch of all chunks, emphasis applied per chunk. */
export async function encodePrompt(model: SdModel, tokenized: TokenizedPrompt): Promise<Conditioning> {
  const { chunks, tokenCount } = tokenized;
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
