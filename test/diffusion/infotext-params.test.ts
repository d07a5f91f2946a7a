// The infotext key/value scan against the regex it replaces (A1111's re_param_code): the same
// matches, from any start, at a cost of one pass over the text.
import { describe, expect, it } from 'vitest';
import { ParamScan, paramScanWork, RE_PARAM_SPEC } from '../../src/diffusion/infotext-params.ts';

/** What the regex finds scanning from `from`, in the scan's terms. */
function regexMatches(text: string, from: number) {
  return [...text.slice(from).matchAll(RE_PARAM_SPEC)].map((m) => ({
    start: m.index + from,
    end: m.index + from + m[0].length,
    key: m[1],
    value: m[2],
  }));
}

function expectSameAsRegex(text: string, from = 0) {
  const scan = new ParamScan(text);
  const expected = regexMatches(text, from);
  expect(scan.matchesFrom(from)).toEqual(expected);
  expect(scan.differentKeysFrom(from)).toEqual([...new Set(expected.map((m) => m.key?.trim()))].slice(0, 3));
}

/** The reviewer's input: `x Steps: ,` k times, then `a a a …` up to `length` characters. */
const hostile = (length: number, k: number) => {
  const head = 'x Steps: ,'.repeat(k);
  return `${head} ${'a '.repeat((length - head.length - 1) >> 1)}`;
};

describe('ParamScan', () => {
  it.each([
    'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512',
    'Model: "a, b", Lora hashes: "x: 1, y: 2", Version: v1.10.1',
    // quoted values: escapes, an unclosed quote, a quote not followed by a comma, an empty ""
    'A: "x\\"y", B: "open, C: d',
    'A: "x" y, B: "", C: "\\\\", D: "a\\\nb"',
    // keys: one character (no match), spaces and tabs before, -, / and spaces inside, a tab inside
    'a: 1,  bb: 2,\tcc-d/e f : 3, g\th: 4, :5, ::, x:',
    'é: 1, ab\u00a0: 2, \u2028cd: 3\r, ef: "\r"',
    hostile(300, 10),
    hostile(300, 0),
  ])('finds what the regex finds in %j', (text) => {
    for (let from = 0; from <= text.length; from++) expectSameAsRegex(text, from);
  });

  it('finds what the regex finds in 20,000 random strings of the characters that matter', () => {
    const alphabet = [
      'a',
      'b',
      '1',
      '_',
      ' ',
      '\t',
      ':',
      ',',
      '"',
      '\\',
      '-',
      '/',
      '\r',
      '\u2028',
      'é',
      '\u00a0',
    ];
    let state = 12345;
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    for (let t = 0; t < 20_000; t++) {
      const length = Math.floor(next() * 24);
      let text = '';
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)];
      expectSameAsRegex(text, Math.floor(next() * (length + 1)));
    }
  });

  it('visits each position of the hostile paste once, plus once per match', () => {
    for (const [length, k] of [
      [3000, 100],
      [6000, 200],
    ] as const) {
      const text = hostile(length, k);
      paramScanWork.positions = 0;
      const matches = new ParamScan(text).matchesFrom(0);
      // k matches `x Steps: ,`, then no ':' in `a a a …`
      expect(matches.map((m) => m.key)).toEqual(Array(k).fill('x Steps'));
      expect(paramScanWork.positions).toBe(text.length + 1 + k);
    }
  });
});
