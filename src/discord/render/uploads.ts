// A file over the server's upload limit is sent as WebP instead (with a note), smaller steps of
// quality until it fits; PNG stays the rule because only the PNG carries the `parameters` chunk.
import sharp from 'sharp';
import type { FileOut } from './payload.ts';

/** Discord's upload limit for servers without boosts. Interactions report the real one. */
export const DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024;

const QUALITIES = [90, 80, 65, 50];

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export async function fitUploads(
  files: readonly FileOut[],
  limitBytes: number,
): Promise<{ files: FileOut[]; notes: string[] }> {
  const out: FileOut[] = [];
  const notes: string[] = [];
  for (const file of files) {
    if (file.data.length <= limitBytes) {
      out.push(file);
      continue;
    }
    let fitted: Buffer | undefined;
    for (const quality of QUALITIES) {
      const webp = await sharp(file.data).webp({ quality }).toBuffer();
      if (webp.length <= limitBytes) {
        fitted = webp;
        break;
      }
    }
    const name = file.name.replace(/\.png$/i, '.webp');
    if (fitted) {
      out.push({ name, data: fitted });
      notes.push(
        `ℹ️ ${file.name} (${megabytes(file.data.length)}) is over this server's ${megabytes(limitBytes)} upload limit, so it is sent as ${name}, which carries no parameters: use ℹ️ Parameters for them.`,
      );
    } else {
      notes.push(
        `⚠️ ${file.name} (${megabytes(file.data.length)}) does not fit this server's ${megabytes(limitBytes)} upload limit even as WebP, so it is left out.`,
      );
    }
  }
  return { files: out, notes };
}
