/**
 * An A1111 infotext as members paste it: multi-line from a modal, or squashed onto one line by a
 * slash option (Discord turns the line breaks into spaces). The one-line form gets its breaks
 * back, then `parseInfotext` reads it exactly as it reads a PNG's `parameters`.
 */
import { parseInfotext, parseInfotextFields, type UnusableValue } from '../diffusion/infotext.ts';
import { KEYS_TRACKED, ParamScan } from '../diffusion/infotext-params.ts';
import type { GenerationRequest } from '../diffusion/request.ts';

export interface PastedInfotext {
  request: Partial<GenerationRequest>;
  /** Keys we do not reproduce (face restoration, …). */
  ignored: string[];
  /** Values we cannot use; an option the member typed replaces them, otherwise they are refused. */
  unusable: UnusableValue[];
  model: { hash?: string; name?: string };
}

export type PasteResult =
  | { ok: true; value: PastedInfotext }
  | { ok: false; option: string; message: string };

/** Puts back the two line breaks a one-line paste lost: before `Negative prompt:` and `Steps:`. */
export function restoreLineBreaks(text: string): string {
  const flat = text.replace(/\r\n?/g, '\n').trim();
  if (flat.includes('\n')) return flat;
  let head = flat;
  let params = '';
  // A1111 writes the key/value line starting with `Steps:`; it names at least three keys. One scan
  // of the whole line answers for every `Steps:` (a scan per `Steps:` was quadratic).
  const scan = new ParamScan(flat);
  const starts = [...flat.matchAll(/(?<=^|\s)Steps:\s/g)].map((m) => m.index);
  for (const at of starts.reverse()) {
    if (scan.differentKeysFrom(at).length >= KEYS_TRACKED) {
      head = flat.slice(0, at).trim();
      params = flat.slice(at).trim();
      break;
    }
  }
  const negativeAt = head.search(/(?<=^|\s)Negative prompt:/);
  const lines =
    negativeAt >= 0 ? [head.slice(0, negativeAt).trim(), head.slice(negativeAt).trim()] : head ? [head] : [];
  if (params) lines.push(params);
  return lines.join('\n');
}

export function readPastedInfotext(text: string): PasteResult {
  const restored = restoreLineBreaks(text);
  if (restored === '') return { ok: false, option: 'parameters', message: 'parameters is empty' };
  const { request, ignored, unusable } = parseInfotext(restored);
  const { params } = parseInfotextFields(restored);
  const model = { hash: params.get('Model hash'), name: params.get('Model') };
  return { ok: true, value: { request, ignored, unusable, model } };
}

/**
 * Whether a pasted `Model hash` names the loaded model. A1111 writes the first 10 hex digits of
 * the SHA-256; versions before 1.0 wrote 8 hex digits of a hash of 64 KiB at 1 MiB
 * (`sd_models.py::model_hash`), which is matched against that hash when the loaded model was
 * imported from its checkpoint file (`oldHash`).
 */
export function sameModelHash(
  pasted: string,
  loaded: { hash: string; oldHash?: string | undefined },
): boolean {
  const a = pasted.trim().toLowerCase();
  const b = loaded.hash.trim().toLowerCase();
  if (/^[0-9a-f]{8}$/.test(a) && a === loaded.oldHash?.toLowerCase()) return true;
  return a.length > 0 && b.length > 0 && (a.startsWith(b) || b.startsWith(a));
}
