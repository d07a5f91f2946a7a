// The notes a reply carries about its request (soft denoise, another model, ignored keys).
import type { RequestNote } from '../build-request.ts';
import { SOFT_DENOISE_BELOW } from '../build-request.ts';
import { plain } from './text.ts';

export function noteText(note: RequestNote): string {
  switch (note.kind) {
    case 'soft-denoise':
      return `ℹ️ Below denoise ${SOFT_DENOISE_BELOW}, latent upscales tend to come out soft (this one: ${note.denoise}).`;
    case 'other-model':
      return `ℹ️ The pasted parameters were made with model hash ${plain(note.pastedHash)}${note.pastedName ? ` (${plain(note.pastedName)})` : ''}; this bot runs ${plain(note.loaded.name)} (${plain(note.loaded.hash)}), so expect a different picture.`;
    case 'ignored-parameters':
      return `ℹ️ Not reproduced from the pasted parameters: ${note.keys.map(plain).join(', ')}.`;
  }
}

export function notesBlock(notes: readonly RequestNote[]): string {
  return notes.map(noteText).join('\n');
}
