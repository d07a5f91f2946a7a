import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodePng, toRgbBytes } from '../../src/diffusion/image.ts';
import { readPngText } from '../../src/diffusion/png-text.ts';

describe('PNG parameters chunk', () => {
  it('writes Latin-1 text as tEXt and other text as iTXt, both readable back and by libvips', async () => {
    const rgb = Buffer.alloc(4 * 4 * 3, 128);
    for (const [text, chunkType] of [
      ['a café, Steps: 20', 'tEXt'],
      ['猫, Steps: 20', 'iTXt'],
    ] as const) {
      const png = await encodePng(rgb, 4, 4, text);
      expect(png.includes(Buffer.from(chunkType, 'latin1'))).toBe(true);
      expect(readPngText(png).get('parameters')).toBe(text);
      const meta = await sharp(png).metadata();
      expect(meta).toMatchObject({ width: 4, height: 4, format: 'png' });
      // libvips decodes tEXt as UTF-8 (the PNG spec and Pillow say Latin-1), so compare ASCII there
      if (chunkType === 'iTXt')
        expect(meta.comments?.find((c) => c.keyword === 'parameters')?.text).toBe(text);
      else
        expect(meta.comments?.find((c) => c.keyword === 'parameters')?.text).toMatch(/^a caf.*, Steps: 20$/);
    }
  });
});

describe('toRgbBytes (A1111 uint8 conversion)', () => {
  it('clamps (x+1)/2 to [0,1] and truncates 255·x', () => {
    // planes R, G, B of a 1×3 image
    const chw = Float32Array.from([-1, 0, 1, -2, 2, 0.999, 0.5, -0.5, Number.NaN]);
    expect([...toRgbBytes(chw, 1, 3)]).toEqual([0, 0, 191, 127, 255, 63, 255, 254, 0]);
  });
});
