/**
 * Puts A1111's `parameters` text into a PNG as Pillow does (`PngInfo.add_text`): a `tEXt` chunk
 * when the text is Latin-1, else an uncompressed UTF-8 `iTXt`. And reads it back.
 */
import { crc32 } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

function textChunk(keyword: string, text: string): Buffer {
  if (isLatin1(text))
    return chunk('tEXt', Buffer.concat([Buffer.from(`${keyword}\0`, 'latin1'), Buffer.from(text, 'latin1')]));
  // keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL
  return chunk(
    'iTXt',
    Buffer.concat([Buffer.from(`${keyword}\0\0\0\0\0`, 'latin1'), Buffer.from(text, 'utf8')]),
  );
}

/** Inserts a text chunk right after IHDR, where Pillow writes it. */
export function withPngText(png: Buffer, keyword: string, text: string): Buffer {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG');
  const ihdrEnd = 8 + 8 + png.readUInt32BE(8) + 4;
  return Buffer.concat([png.subarray(0, ihdrEnd), textChunk(keyword, text), png.subarray(ihdrEnd)]);
}

/** Every tEXt / uncompressed iTXt entry of a PNG, keyword → text. */
export function readPngText(png: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 8;
  while (at + 12 <= png.length) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'tEXt') {
      const nul = data.indexOf(0);
      out.set(data.toString('latin1', 0, nul), data.toString('latin1', nul + 1));
    } else if (type === 'iTXt') {
      const nul = data.indexOf(0);
      const keyword = data.toString('latin1', 0, nul);
      if (data[nul + 1] === 0) {
        const langEnd = data.indexOf(0, nul + 3);
        const transEnd = data.indexOf(0, langEnd + 1);
        out.set(keyword, data.toString('utf8', transEnd + 1));
      }
    }
    if (type === 'IEND') break;
    at += 12 + len;
  }
  return out;
}
