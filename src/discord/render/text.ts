// Text that members typed, shown so that it cannot break the message: prompts go in a code block
// whose fence no prompt can close; short names are markdown-escaped.
import { escapeMarkdown } from 'discord.js';
import type { GenerationRequest } from '../../diffusion/request.ts';
import { resolveScheduler } from '../../diffusion/samplers.ts';

/** Longest prompt shown in a reply; the full text is in the PNG and behind ℹ️ Parameters. */
export const PROMPT_SHOWN = 350;

/** A code block that holds any text: no run of backticks survives to close the fence early. */
export function codeBlock(text: string): string {
  const safe = text.replace(/`(?=`)/g, '`\u200b');
  return `\`\`\`\n${safe}\n\`\`\``;
}

const GRAPHEMES = new Intl.Segmenter('en', { granularity: 'grapheme' });

/**
 * `text` within `max` UTF-16 units (how Discord counts a message's length), shortened with "…"
 * between whole graphemes: a cut inside an emoji would send half of it (a lone surrogate).
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = 0;
  for (const { index, segment } of GRAPHEMES.segment(text)) {
    if (index + segment.length > max - 1) break;
    end = index + segment.length;
  }
  return `${text.slice(0, end)}…`;
}

export function promptBlock(prompt: string, max = PROMPT_SHOWN): string {
  return codeBlock(truncate(prompt.replace(/\s+/g, ' ').trim(), max));
}

/** Short text (a model or role name) inline, with markdown neutralised. */
export function plain(text: string): string {
  return escapeMarkdown(text.replace(/\s+/g, ' '));
}

export function units(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  return n.toFixed(2).replace(/\.?0+$/, '') || '0';
}

export function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** Discord's own relative timestamp (rendered in each reader's time zone; not a mention). */
export function relative(date: Date): string {
  return `<t:${Math.floor(date.getTime() / 1000)}:R>`;
}

/** "DPM++ 2M Karras": the sampler with its schedule, as A1111 names the pair. */
export function samplerLabel(req: Pick<GenerationRequest, 'sampler' | 'scheduler'>): string {
  const scheduler = resolveScheduler(req);
  return scheduler === 'Automatic' ? req.sampler : `${req.sampler} ${scheduler}`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
