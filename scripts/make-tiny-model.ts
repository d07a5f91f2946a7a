// Writes a tiny SD-shaped ONNX folder (not a real model: it paints smooth colour fields) so the
// CLI and the bot can be tried without downloading weights:  npm run make-tiny-model -- models/tiny
// Only runtime dependencies: it works after `npm ci --omit=dev`.
import { readdirSync } from 'node:fs';
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
// never write over a folder that holds something: it may be a real model (its weights would be
// replaced while its checkpoint.json kept claiming the old identity)
if (folderHoldsSomething(dir)) {
  process.stderr.write(`make-tiny-model: ${dir} already exists and is not empty; name a new folder\n`);
  process.exit(2);
}
writeTinyModel(dir, { layout, tokenizerDir });
process.stdout.write(`wrote a tiny ${layout}-layout test model to ${dir}\n`);

function folderHoldsSomething(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    return true; // a file, or a folder we cannot read: not ours to write into
  }
}
