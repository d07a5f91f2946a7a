/**
 * A1111's emphasis syntax, `modules/prompt_parser.py::parse_prompt_attention` (v1.10):
 * `(a)` ×1.1, `[a]` ÷1.1, `(a:1.3)` ×1.3, `\(` `\)` `\[` `\]` `\\` literals, `BREAK` markers.
 */
export interface WeightedText {
  text: string;
  /** Multiplier for the text's tokens; −1 marks a BREAK. */
  weight: number;
}

export const BREAK_WEIGHT = -1;

const RE_ATTENTION = /\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()[\]:]+|:/g;
const RE_BREAK = /\s*\bBREAK\b\s*/s;

export function parsePromptAttention(prompt: string): WeightedText[] {
  const res: WeightedText[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyRange = (start: number, by: number) => {
    for (let p = start; p < res.length; p++) (res[p] as WeightedText).weight *= by;
  };

  for (const m of prompt.matchAll(RE_ATTENTION)) {
    const text = m[0];
    const weight = m[1] === undefined ? undefined : Number(m[1]);
    if (text.startsWith('\\')) {
      res.push({ text: text.slice(1), weight: 1 });
    } else if (text === '(') {
      round.push(res.length);
    } else if (text === '[') {
      square.push(res.length);
    } else if (weight !== undefined && !Number.isNaN(weight) && round.length > 0) {
      multiplyRange(round.pop() as number, weight);
    } else if (text === ')' && round.length > 0) {
      multiplyRange(round.pop() as number, 1.1);
    } else if (text === ']' && square.length > 0) {
      multiplyRange(square.pop() as number, 1 / 1.1);
    } else {
      text.split(RE_BREAK).forEach((part, i) => {
        if (i > 0) res.push({ text: 'BREAK', weight: BREAK_WEIGHT });
        res.push({ text: part, weight: 1 });
      });
    }
  }
  // unbalanced openers apply to the end of the prompt
  for (const pos of round) multiplyRange(pos, 1.1);
  for (const pos of square) multiplyRange(pos, 1 / 1.1);

  if (res.length === 0) return [{ text: '', weight: 1 }];
  // merge runs of identical weights
  for (let i = 0; i + 1 < res.length; ) {
    const a = res[i] as WeightedText;
    const b = res[i + 1] as WeightedText;
    if (a.weight === b.weight) {
      a.text += b.text;
      res.splice(i + 1, 1);
    } else {
      i++;
    }
  }
  return res;
}
