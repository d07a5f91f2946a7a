// Reference: test/fixtures/clip-token-ids.json (openai CLIP SimpleTokenizer; cross-checked
// against HF transformers 4.57.6 slow CLIPTokenizer with ftfy, which is what A1111 runs).
import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/diffusion/model/model-files.ts';
import { ClipTokenizer } from '../../src/diffusion/tokenizer/clip-tokenizer.ts';
import { normalizeClipText } from '../../src/diffusion/tokenizer/normalize.ts';
import { CLIP_TOKENIZER_DIR, readFixture } from '../support/fixtures.ts';

interface Case {
  name: string;
  text: string;
  normalized: string;
  ids: number[];
  hf_agrees: Record<string, boolean>;
}
const SLOW_HF = 'transformers-4.57.6 CLIPTokenizer (slow, tokenizers 0.22.2)';
const { cases } = readFixture<{ cases: Case[] }>('clip-token-ids.json');

/** Cases where we knowingly differ from the reference, and why. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  mojibake: 'ftfy’s mojibake repair (re-decoding cp1252-misread UTF-8) is not ported',
  html_with_angle_bracket:
    'A1111’s tokenizer (HF + ftfy) leaves entities alone on lines with "<"; the reference unescapes them',
};

const tokenizer = ClipTokenizer.fromFolder(CLIP_TOKENIZER_DIR);

describe('ClipTokenizer on the real SD 1.x vocab', () => {
  it('reads the special ids from the folder', () => {
    expect(tokenizer.ids).toEqual({ bos: 49406, eos: 49407, pad: 49407, comma: 267 });
  });

  it('covers every case where HF’s slow tokenizer agrees, except the listed differences', () => {
    const required = cases.filter((c) => c.hf_agrees[SLOW_HF] && !(c.name in KNOWN_DIFFERENCES));
    expect(required.length).toBeGreaterThanOrEqual(55);
  });

  for (const c of cases) {
    const known = KNOWN_DIFFERENCES[c.name];
    if (known) {
      it(`${c.name}: known difference (${known})`, () => {
        expect(tokenizer.encode(c.text)).not.toEqual(c.ids);
      });
      continue;
    }
    it(`${c.name}`, () => {
      expect(normalizeClipText(c.text)).toBe(c.normalized);
      expect(tokenizer.encode(c.text)).toEqual(c.ids);
    });
  }

  it('keeps HTML entities on a line with "<", as ftfy does', () => {
    expect(normalizeClipText('<b>bold</b> &amp; more')).toBe('<b>bold</b> &amp; more');
  });

  it('names the missing file when a folder is incomplete', () => {
    expect(() => ClipTokenizer.fromFolder('/nonexistent/tokenizer')).toThrow(
      new ModelLoadError('/nonexistent/tokenizer/vocab.json is missing'),
    );
  });
});
