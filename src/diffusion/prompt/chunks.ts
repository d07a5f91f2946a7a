/**
 * Prompt → 77-token chunks with per-token multipliers, as A1111's
 * `sd_hijack_clip.py::TextConditionalModel.tokenize_line` (v1.10) builds them: 75 tokens per
 * chunk, the comma backtrack (`comma_padding_backtrack` = 20), BREAK closing a chunk, EOS padding.
 */
import type { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';
import { BREAK_WEIGHT, parsePromptAttention } from './attention.ts';

export const CHUNK_LENGTH = 75;
export const COMMA_PADDING_BACKTRACK = 20;

export interface PromptChunk {
  /** 77 ids: BOS, 75 tokens or padding, EOS. */
  tokens: number[];
  /** 77 multipliers, 1.0 at BOS/EOS and on padding. */
  multipliers: number[];
}

export interface TokenizedPrompt {
  chunks: PromptChunk[];
  /** Tokens the prompt uses (what A1111 shows as "n/75"). */
  tokenCount: number;
}

export function promptToChunks(prompt: string, tokenizer: ClipTokenizer): TokenizedPrompt {
  const { bos, eos, pad, comma } = tokenizer.ids;
  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let multipliers: number[] = [];
  let tokenCount = 0;
  let lastComma = -1;

  const nextChunk = (isLast = false) => {
    tokenCount += isLast ? tokens.length : CHUNK_LENGTH;
    const toAdd = CHUNK_LENGTH - tokens.length;
    for (let i = 0; i < toAdd; i++) {
      tokens.push(eos);
      multipliers.push(1);
    }
    const ids = [bos, ...tokens, eos];
    // A tokenizer whose pad differs from EOS (SD 2.x) pads after the first EOS (`process_tokens`).
    if (pad !== eos) ids.fill(pad, ids.indexOf(eos) + 1);
    chunks.push({ tokens: ids, multipliers: [1, ...multipliers, 1] });
    tokens = [];
    multipliers = [];
    lastComma = -1;
  };

  for (const { text, weight } of parsePromptAttention(prompt)) {
    if (text === 'BREAK' && weight === BREAK_WEIGHT) {
      nextChunk();
      continue;
    }
    for (const token of tokenizer.encode(text)) {
      if (token === comma) {
        lastComma = tokens.length;
      } else if (
        tokens.length === CHUNK_LENGTH &&
        lastComma !== -1 &&
        tokens.length - lastComma <= COMMA_PADDING_BACKTRACK
      ) {
        // move the words after the last comma into the next chunk
        const at = lastComma + 1;
        const relocTokens = tokens.slice(at);
        const relocMults = multipliers.slice(at);
        tokens = tokens.slice(0, at);
        multipliers = multipliers.slice(0, at);
        nextChunk();
        tokens = relocTokens;
        multipliers = relocMults;
      }
      if (tokens.length === CHUNK_LENGTH) nextChunk();
      tokens.push(token);
      multipliers.push(weight);
    }
  }
  if (tokens.length > 0 || chunks.length === 0) nextChunk(true);
  return { chunks, tokenCount };
}
