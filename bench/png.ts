// PNG encode of a 1024×1024 RGB image as the pipeline writes it (sharp, with the infotext chunk),
// at our setting and at the other zlib levels for comparison. The image is photo-like: smooth
// shapes plus grain (noise alone is the incompressible worst case, flat colour the trivial best).
import sharp from 'sharp';
import { encodePng, PNG_COMPRESSION_LEVEL } from '../src/diffusion/image.ts';
import { progress } from './progress.ts';

export interface PngTiming {
  compressionLevel: number;
  ms: number;
  kb: number;
  ours: boolean;
}

function photoLike(side: number): Buffer {
  const rgb = Buffer.alloc(side * side * 3);
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const base = 110 + 70 * Math.sin(x / 97) * Math.cos(y / 61) + 40 * Math.sin((x + y) / 23);
      for (let c = 0; c < 3; c++) {
        const v = base + c * 18 + (rand() - 0.5) * 14;
        rgb[(y * side + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return rgb;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function measurePng(runs = 7): Promise<PngTiming[]> {
  const side = 1024;
  const rgb = photoLike(side);
  const out: PngTiming[] = [];
  for (const level of [PNG_COMPRESSION_LEVEL, 1, 3, 6, 9].filter((l, i, a) => a.indexOf(l) === i)) {
    progress(`PNG 1024×1024 at zlib level ${level}`);
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const png =
        level === PNG_COMPRESSION_LEVEL
          ? await encodePng(rgb, side, side, 'bench parameters')
          : await sharp(rgb, { raw: { width: side, height: side, channels: 3 } })
              .png({ compressionLevel: level })
              .toBuffer();
      times.push(performance.now() - t);
      bytes = png.length;
    }
    out.push({
      compressionLevel: level,
      ms: median(times.slice(1)),
      kb: bytes / 1024,
      ours: level === PNG_COMPRESSION_LEVEL,
    });
  }
  return out;
}
