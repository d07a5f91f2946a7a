/**
 * A prompt as the text encoder reads it, for checks on its words (a server's blocked words): the
 * segments of A1111's emphasis parsing, each cleaned up as CLIP's tokenizer cleans it, without
 * their weights and BREAKs. So `ns()fw`, `ns\fw`, `ＮＳＦＷ`, `&#110;sfw` and `ns\u0001fw` read
 * `nsfw`, as they do for the model (the same token ids).
 */
import { normalizeClipText } from '../tokenizer/normalize.ts';
import { BREAK_WEIGHT, parsePromptAttention } from './attention.ts';

export function promptAsRead(prompt: string): string {
  return (
    parsePromptAttention(prompt)
      .filter((segment) => segment.weight !== BREAK_WEIGHT)
      .map((segment) => normalizeClipText(segment.text))
      .filter((text) => text !== '')
      // the tokenizer encodes each segment apart, so a segment's end ends a word: a space says so
      .join(' ')
  );
}
