import { describe, expect, it } from 'vitest';
import { parsePromptAttention } from '../../src/diffusion/prompt/attention.ts';
import { promptToChunks } from '../../src/diffusion/prompt/chunks.ts';
import { applyEmphasis } from '../../src/diffusion/prompt/emphasis.ts';
import { ClipTokenizer } from '../../src/diffusion/tokenizer/clip-tokenizer.ts';
import { assertClose } from '../support/assert-close.ts';
import { CLIP_TOKENIZER_DIR } from '../support/fixtures.ts';

const pairs = (s: string) => parsePromptAttention(s).map(({ text, weight }) => [text, weight]);

describe('parsePromptAttention: the examples in A1111 v1.10 prompt_parser.py’s docstring', () => {
  it.each([
    ['normal text', [['normal text', 1.0]]],
    [
      'an (important) word',
      [
        ['an ', 1.0],
        ['important', 1.1],
        [' word', 1.0],
      ],
    ],
    ['(unbalanced', [['unbalanced', 1.1]]],
    ['\\(literal\\]', [['(literal]', 1.0]]],
    ['(unnecessary)(parens)', [['unnecessaryparens', 1.1]]],
    [
      'a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).',
      [
        ['a ', 1.0],
        ['house', 1.5730000000000004],
        [' ', 1.1],
        ['on', 1.0],
        [' a ', 1.1],
        ['hill', 0.55],
        [', sun, ', 1.1],
        ['sky', 1.4641000000000006],
        ['.', 1.1],
      ],
    ],
  ])('%s', (prompt, expected) => {
    expect(pairs(prompt)).toEqual(expected);
  });

  it('square brackets divide by 1.1, a backslash escapes itself, an empty prompt is one empty part', () => {
    expect(pairs('[blue hair]')).toEqual([['blue hair', 1 / 1.1]]);
    expect(pairs('a \\\\ b')).toEqual([['a \\ b', 1]]);
    expect(pairs('')).toEqual([['', 1]]);
  });

  it('BREAK becomes a marker between parts, swallowing the spaces around it', () => {
    expect(pairs('a cat BREAK a dog')).toEqual([
      ['a cat', 1],
      ['BREAK', -1],
      ['a dog', 1],
    ]);
    expect(pairs('BREAKFAST')).toEqual([['BREAKFAST', 1]]);
  });

  it('a weight without an open bracket is plain text', () => {
    expect(pairs('cat:1.2)')).toEqual([['cat:1.2)', 1]]);
  });
});

describe('promptToChunks', () => {
  const tok = ClipTokenizer.fromFolder(CLIP_TOKENIZER_DIR);
  const CAT = tok.encode('cat')[0] as number;
  const DOG = tok.encode('dog')[0] as number;

  it('wraps a short prompt in BOS … EOS and pads with EOS to 77', () => {
    const { chunks, tokenCount } = promptToChunks('a cat', tok);
    expect(tokenCount).toBe(2);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.tokens).toEqual([49406, 320, 2368, ...Array(74).fill(49407)]);
    expect(chunks[0]?.multipliers).toEqual(Array(77).fill(1));
  });

  it('an empty prompt is one chunk of BOS and EOS', () => {
    expect(promptToChunks('', tok).chunks).toEqual([
      { tokens: [49406, ...Array(76).fill(49407)], multipliers: Array(77).fill(1) },
    ]);
  });

  it('splits at 75 tokens when there is no comma to backtrack to', () => {
    const { chunks, tokenCount } = promptToChunks(Array(80).fill('cat').join(' '), tok);
    expect(tokenCount).toBe(80);
    expect(chunks.map((c) => c.tokens.filter((t) => t === CAT).length)).toEqual([75, 5]);
  });

  it('moves the words after the last comma into the next chunk (backtrack ≤ 20)', () => {
    const prompt = `${Array(70).fill('cat').join(' ')}, ${Array(10).fill('dog').join(' ')}`;
    const { chunks, tokenCount } = promptToChunks(prompt, tok);
    expect(chunks).toHaveLength(2);
    expect(chunks[0]?.tokens.slice(70, 74)).toEqual([CAT, 267, 49407, 49407]);
    expect(chunks[1]?.tokens.slice(0, 12)).toEqual([49406, ...Array(10).fill(DOG), 49407]);
    expect(tokenCount).toBe(85);
  });

  it('BREAK closes the chunk early', () => {
    const { chunks } = promptToChunks('cat BREAK dog', tok);
    expect(chunks.map((c) => c.tokens.slice(0, 3))).toEqual([
      [49406, CAT, 49407],
      [49406, DOG, 49407],
    ]);
  });

  it('carries emphasis weights onto the tokens', () => {
    const { chunks } = promptToChunks('(cat:1.5) [dog]', tok);
    expect(chunks[0]?.multipliers.slice(0, 4)).toEqual([1, 1.5, 1 / 1.1, 1]);
  });
});

describe('applyEmphasis (Original)', () => {
  it('scales tokens by their multipliers, then restores the chunk mean', () => {
    const hidden = 2;
    const z = Float32Array.from([1, 2, 3, 4, 5, 6]);
    applyEmphasis(z, [1, 2, 1], hidden);
    // scaled: 1,2,6,8,5,6 (sum 28); original sum 21 → factor 0.75
    assertClose(z, [0.75, 1.5, 4.5, 6, 3.75, 4.5], { atol: 1e-6 });
  });

  it('leaves an unweighted chunk untouched', () => {
    const z = Float32Array.from([1, -1, 0.5]);
    applyEmphasis(z, [1, 1, 1], 1);
    expect(Array.from(z)).toEqual([1, -1, 0.5]);
  });
});
