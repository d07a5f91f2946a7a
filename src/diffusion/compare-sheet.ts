// Side-by-side comparison sheet: images in a row, each under a text label (e.g. "denoise 0.5").
import sharp, { type OverlayOptions } from 'sharp';

const LABEL_HEIGHT = 40;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** sharp's limit on an image's pixels (its `limitInputPixels` default), which the sheet is made as. */
const SHEET_PIXEL_LIMIT = 0x3fff * 0x3fff;

/** How many images of `width`×`height` one sheet can hold side by side. */
export function sheetCapacity(width: number, height: number): number {
  return Math.floor(SHEET_PIXEL_LIMIT / (width * (height + LABEL_HEIGHT)));
}

export async function compareSheet(items: { png: Buffer; label: string }[]): Promise<Buffer> {
  const metas = await Promise.all(items.map((i) => sharp(i.png).metadata()));
  const width = metas.reduce((sum, m) => sum + (m.width ?? 0), 0);
  const height = Math.max(...metas.map((m) => m.height ?? 0)) + LABEL_HEIGHT;
  const layers: OverlayOptions[] = [];
  let left = 0;
  items.forEach((item, i) => {
    const w = metas[i]?.width ?? 0;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${LABEL_HEIGHT}"><text x="${w / 2}" y="27" font-family="DejaVu Sans, sans-serif" font-size="20" fill="#fff" text-anchor="middle">${escapeXml(item.label)}</text></svg>`;
    layers.push({ input: Buffer.from(svg), left, top: 0 }, { input: item.png, left, top: LABEL_HEIGHT });
    left += w;
  });
  return sharp({ create: { width, height, channels: 3, background: { r: 24, g: 24, b: 27 } } })
    .composite(layers)
    .png()
    .toBuffer();
}
