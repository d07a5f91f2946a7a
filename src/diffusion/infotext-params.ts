/**
 * The key/value pairs of an infotext's last line as A1111's `infotext_utils.py::re_param_code`
 * finds them, `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` with `findall` (what
 * `RE_PARAM_SPEC` below spells in JavaScript), matched in linear time. The regex itself
 * backtracks from every start to the end of a long run of key characters with no `:` after it,
 * so a pasted line of a few thousand characters took seconds; a scan here costs one pass over the
 * text whatever it holds.
 *
 * Why one pass suffices (the regex's own order of trying, followed to its end):
 * - `\s*` then `\w`: the spaces are all taken, so the key starts at the first non-space.
 * - `\w[\w \-/]+:`: `:` is not a key character, so the key is the whole run of key characters and
 *   must be followed by `:`; otherwise nothing starting in that run matches.
 * - after `:` and all spaces, the quoted form needs a `"`, one or more units (`\` and any character
 *   but a line break, or a character other than `\` and `"`) as far as they go, then `"` and `,`
 *   or the end; no shorter run of units can end at a `"`, so there is one place to look. Otherwise
 *   `[^,]*` takes everything up to the next comma, which always matches.
 * So each start has a verdict from four facts about the text to its right (where its spaces,
 * its key run, its quoted run and its next comma end), computed right to left once.
 */

/** The regex this module matches, kept for the tests that check the scan against it. */
export const RE_PARAM_SPEC = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

export interface ParamMatch {
  /** Where the match starts and ends in the scanned text (`index`, `index + [0].length`). */
  start: number;
  end: number;
  /** The regex's groups, untrimmed. */
  key: string;
  value: string;
}

/**
 * Positions the scans have visited, all scans together: the tests bound it by a closed form of
 * the text's length (no timing), so quadratic work cannot come back unnoticed.
 */
export const paramScanWork = { positions: 0 };

/** How many different keys `differentKeysFrom` tracks: an infotext's line holds at least three. */
export const KEYS_TRACKED = 3;

const SPACE = /\s/;
const WORD = /\w/;
const KEY = /[\w \-/]/;
/** What `.` matches: anything but a line terminator. */
const DOT = /./;

export class ParamScan {
  private readonly n: number;
  /** For each position: the start of the first match a scan from there finds, or -1. */
  private readonly firstMatch: Int32Array;
  private readonly matchAt = new Map<number, ParamMatch>();
  /** For each match start: the first KEYS_TRACKED different trimmed keys from there on. */
  private readonly keysAt = new Map<number, string[]>();

  constructor(readonly text: string) {
    const n = text.length;
    this.n = n;
    // each: the first position at or after i where the run ends (n past the end)
    const spacesEnd = new Int32Array(n + 1);
    const keyEnd = new Int32Array(n + 1);
    const commaAt = new Int32Array(n + 1);
    const quotedEnd = new Int32Array(n + 1);
    this.firstMatch = new Int32Array(n + 1);
    for (let i = n; i >= 0; i--) {
      paramScanWork.positions++;
      const c = text[i];
      spacesEnd[i] = c !== undefined && SPACE.test(c) ? (spacesEnd[i + 1] as number) : i;
      keyEnd[i] = c !== undefined && KEY.test(c) ? (keyEnd[i + 1] as number) : i;
      commaAt[i] = c !== undefined && c !== ',' ? (commaAt[i + 1] as number) : i;
      if (c === undefined || c === '"') quotedEnd[i] = i;
      else if (c !== '\\') quotedEnd[i] = quotedEnd[i + 1] as number;
      else quotedEnd[i] = i + 1 < n && DOT.test(text[i + 1] as string) ? (quotedEnd[i + 2] as number) : i;

      const match = this.matchFrom(i, spacesEnd, keyEnd, commaAt, quotedEnd);
      if (match === undefined) {
        this.firstMatch[i] = i < n ? (this.firstMatch[i + 1] as number) : -1;
        continue;
      }
      this.firstMatch[i] = i;
      this.matchAt.set(i, match);
      const key = match.key.trim();
      const after = this.keysAt.get(this.firstMatch[match.end] as number) ?? [];
      const keys = [key, ...after.filter((k) => k !== key)].slice(0, KEYS_TRACKED);
      this.keysAt.set(i, keys);
    }
  }

  /** The regex tried at `s` alone (the arrays hold every position after `s`, and `s` itself). */
  private matchFrom(
    s: number,
    spacesEnd: Int32Array,
    keyEnd: Int32Array,
    commaAt: Int32Array,
    quotedEnd: Int32Array,
  ): ParamMatch | undefined {
    const { text, n } = this;
    const k = spacesEnd[s] as number;
    if (k >= n || !WORD.test(text[k] as string)) return undefined;
    const colon = keyEnd[k] as number;
    if (colon < k + 2 || text[colon] !== ':') return undefined;
    const v = spacesEnd[colon + 1] as number;
    if (text[v] === '"') {
      const close = quotedEnd[v + 1] as number;
      if (close > v + 1 && text[close] === '"' && (close + 1 === n || text[close + 1] === ',')) {
        const value = text.slice(v, close + 1);
        return { start: s, end: close + 1 === n ? n : close + 2, key: text.slice(k, colon), value };
      }
    }
    const comma = commaAt[v] as number;
    return {
      start: s,
      end: comma < n ? comma + 1 : n,
      key: text.slice(k, colon),
      value: text.slice(v, comma),
    };
  }

  /** `text.slice(from).matchAll(RE_PARAM_SPEC)`, at their places in `text`. */
  matchesFrom(from = 0): ParamMatch[] {
    const out: ParamMatch[] = [];
    for (let at = this.firstMatch[from] ?? -1; at >= 0; ) {
      paramScanWork.positions++;
      const match = this.matchAt.get(at) as ParamMatch;
      out.push(match);
      at = this.firstMatch[match.end] as number;
    }
    return out;
  }

  /** The different trimmed keys those matches name, the first KEYS_TRACKED of them. */
  differentKeysFrom(from = 0): readonly string[] {
    return this.keysAt.get(this.firstMatch[from] ?? -1) ?? [];
  }
}
