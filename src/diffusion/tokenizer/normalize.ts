/**
 * CLIP's text clean-up as A1111's tokenizer applies it (HF slow `CLIPTokenizer` with ftfy:
 * `whitespace_clean(ftfy.fix_text(text)).lower()`). Of ftfy's repairs we port the ones prompts
 * meet: HTML entities (only in lines without '<', as ftfy does), curly quotes, Latin ligatures,
 * fullwidth characters, control characters and NFC. Mojibake repair is not ported.
 */

const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  trade: '™',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  laquo: '«',
  raquo: '»',
  times: '×',
  divide: '÷',
  deg: '°',
  plusmn: '±',
  middot: '·',
  bull: '•',
  euro: '€',
  pound: '£',
  yen: '¥',
  cent: '¢',
  sect: '§',
  para: '¶',
  hearts: '♥',
  star: '☆',
};

const ENTITY = /&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,23});/g;

function unescapeOnce(text: string): string {
  return text.replace(ENTITY, (whole, body: string) => {
    if (body.startsWith('#')) {
      const code =
        body[1] === 'x' || body[1] === 'X' ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff)
        ? String.fromCodePoint(code)
        : whole;
    }
    return NAMED_ENTITIES[body] ?? NAMED_ENTITIES[body.toLowerCase()] ?? whole;
  });
}

/** ftfy's `unescape_html`, repeated until stable as `fix_text` does, skipped on lines with '<'. */
function unescapeHtml(line: string): string {
  if (line.includes('<')) return line;
  let prev = line;
  for (;;) {
    const next = unescapeOnce(prev);
    if (next === prev) return next;
    prev = next;
  }
}

const LIGATURES: Record<string, string> = {
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
  Ĳ: 'IJ',
  ĳ: 'ij',
  Ŀ: 'L·',
  ŀ: 'l·',
  ǅ: 'Dž',
  ǆ: 'dž',
  ǈ: 'Lj',
  ǉ: 'lj',
  ǋ: 'Nj',
  ǌ: 'nj',
};

function fixCharacters(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (cp >= 0xff01 && cp <= 0xff5e)
      out += String.fromCodePoint(cp - 0xfee0); // fullwidth ASCII
    else if (cp === 0x3000)
      out += ' '; // ideographic space
    else if (ch === '‘' || ch === '’' || ch === 'ʼ' || ch === '′') out += "'";
    else if (ch === '“' || ch === '”' || ch === '″') out += '"';
    else if (LIGATURES[ch] !== undefined) out += LIGATURES[ch];
    // control characters except tab/newline (ftfy `remove_control_chars`)
    else if ((cp < 0x20 && ch !== '\t' && ch !== '\n' && ch !== '\r') || (cp >= 0x7f && cp < 0xa0)) continue;
    else out += ch;
  }
  return out;
}

export function normalizeClipText(text: string): string {
  const fixed = fixCharacters(
    text
      .split(/\r\n|\r|\n/)
      .map(unescapeHtml)
      .join('\n'),
  ).normalize('NFC');
  return fixed.replace(/\s+/g, ' ').trim().toLowerCase();
}
