// Writes a tiny SD-shaped ONNX folder (not a real model: it paints smooth colour fields) so the
// CLI and the bot can be tried without downloading weights:  npm run make-tiny-model -- models/tiny
// Only runtime dependencies: it works after `npm ci --omit=dev`.
import path from 'node:path';
import { writeTinyModel } from '../src/diffusion/model/tiny-model.ts';

// the real SD 1.x CLIP tokenizer files, kept with the reference data (read as data, not imported)
const tokenizerDir = path.resolve(
  import.meta.dirname,
  '..',
  'test',
  'fixtures',
  'clip-tokenizer',
  'tokenizer',
);

const [dir = 'models/tiny-sd', layout = 'optimum'] = process.argv.slice(2);
if (layout !== 'optimum' && layout !== 'diffusers') {
  process.stderr.write('usage: npm run make-tiny-model -- [DIR] [optimum|diffusers]\n');
  process.exit(2);
}
writeTinyModel(dir, { layout, tokenizerDir });
process.stdout.write(`wrote a tiny ${layout}-layout test model to ${dir}\n`);
