// Writes a tiny SD-shaped ONNX folder (not a real model: it paints smooth colour fields) so the
// CLI and the bot can be tried without downloading weights:  npm run make-tiny-model -- models/tiny
import { writeTinyModel } from '../test/support/tiny-model.ts';

const [dir = 'models/tiny-sd', layout = 'optimum'] = process.argv.slice(2);
if (layout !== 'optimum' && layout !== 'diffusers') {
  process.stderr.write('usage: npm run make-tiny-model -- [DIR] [optimum|diffusers]\n');
  process.exit(2);
}
writeTinyModel(dir, { layout });
process.stdout.write(`wrote a tiny ${layout}-layout test model to ${dir}\n`);
