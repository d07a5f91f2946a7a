/**
 * CLIP byte-level BPE (openai CLIP `simple_tokenizer.py`, HF `CLIPTokenizer`), loaded from a
 * model folder's `tokenizer/vocab.json` + `merges.txt`; special ids read from the folder.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ModelLoadError, readJsonFile, readTextFile } from '../model/model-files.ts';
import { normalizeClipText } from './normalize.ts';

const SPLIT =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2/CLIP `bytes_to_unicode`: printable stand-ins for all 256 byte values. */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  }
  return table;
}

export interface SpecialIds {
  bos: number;
  eos: number;
  pad: number;
  /** `,</w>`: A1111 backtracks to the last comma when a 75-token chunk overflows. */
  comma: number;
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'content' in value && typeof value.content === 'string') {
    return value.content;
  }
  return undefined;
}

export class ClipTokenizer {
  readonly ids: SpecialIds;
  private readonly byteTable = bytesToUnicode();
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly vocab: Record<string, number>,
    merges: readonly string[],
    special: { bos?: string; eos?: string; pad?: string } = {},
  ) {
    merges.forEach((m, i) => {
      this.ranks.set(m, i);
    });
    const id = (tokenText: string, what: string) => {
      const v = vocab[tokenText];
      if (v === undefined) throw new Error(`has no ${what} token "${tokenText}"`);
      return v;
    };
    const eos = id(special.eos ?? '<|endoftext|>', 'end-of-text');
    this.ids = {
      bos: id(special.bos ?? '<|startoftext|>', 'start-of-text'),
      eos,
      pad: special.pad ? id(special.pad, 'padding') : eos,
      comma: id(',</w>', 'comma'),
    };
  }

  /** Loads `vocab.json`, `merges.txt` and, when present, `special_tokens_map.json` from a folder. */
  static fromFolder(dir: string): ClipTokenizer {
    const vocabFile = path.join(dir, 'vocab.json');
    const vocab = readJsonFile(vocabFile);
    if (!isVocab(vocab)) {
      throw new ModelLoadError(`${vocabFile} must be a JSON object mapping each token to a whole-number id`);
    }
    const mergesFile = path.join(dir, 'merges.txt');
    const merges = parseMerges(readTextFile(mergesFile), mergesFile);
    const specialFile = path.join(dir, 'special_tokens_map.json');
    // optional: without it CLIP's defaults apply
    const special = existsSync(specialFile) ? readJsonFile(specialFile) : {};
    if (typeof special !== 'object' || special === null || Array.isArray(special)) {
      throw new ModelLoadError(`${specialFile} must be a JSON object`);
    }
    const entries = special as Record<string, unknown>;
    try {
      return new ClipTokenizer(vocab, merges, {
        bos: tokenContent(entries.bos_token),
        eos: tokenContent(entries.eos_token),
        pad: tokenContent(entries.pad_token),
      });
    } catch (err) {
      throw new ModelLoadError(`${vocabFile} ${(err as Error).message}`, { cause: err });
    }
  }

  /** Token ids of `text`, without BOS/EOS, padding or truncation. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const match of normalizeClipText(text).matchAll(SPLIT)) {
      const piece = match[0];
      const direct = piece === '<|startoftext|>' || piece === '<|endoftext|>' ? this.vocab[piece] : undefined;
      if (direct !== undefined) {
        out.push(direct);
        continue;
      }
      let mapped = '';
      for (const byte of this.encoder.encode(piece)) mapped += this.byteTable[byte];
      out.push(...this.bpe(mapped));
    }
    return out;
  }

  private bpe(token: string): number[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const word = Array.from(token);
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best] as string;
      const second = word[best + 1] as string;
      // merge every occurrence of the pair, left to right
      for (let i = 0; i < word.length - 1; i++) {
        if (word[i] === first && word[i + 1] === second) word.splice(i, 2, first + second);
      }
    }
    const ids = word.map((w) => {
      const id = this.vocab[w];
      if (id === undefined) throw new Error(`BPE produced a symbol missing from vocab.json: ${w}`);
      return id;
    });
    if (this.cache.size < 100_000) this.cache.set(token, ids);
    return ids;
  }
}

function isVocab(value: unknown): value is Record<string, number> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((id) => Number.isInteger(id))
  );
}

/** As CLIP and HF do: skip the "#version" header, keep the first 49152 − 256 − 2 merges. */
function parseMerges(text: string, file: string): string[] {
  const lines = text
    .trim()
    .split(/\r?\n/)
    .slice(1, 49152 - 256 - 2 + 1);
  const bad = lines.findIndex((line) => !/^\S+ \S+$/.test(line));
  if (bad >= 0) {
    throw new ModelLoadError(`${file} line ${bad + 2} is not a merge of two symbols separated by a space`);
  }
  return lines;
}
