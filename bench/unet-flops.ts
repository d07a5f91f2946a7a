// The arithmetic of one batch-2 UNet step, in closed form from the imported structure: the
// multiply-adds of every convolution, linear layer and attention product (2 FLOP each), the work
// no kernel can skip. Divided by a step's time it says how close a run is to the CPU's ceiling.
// It follows ldm's UNetModel as src/checkpoint/unet-graph.ts builds it; bench/count_flops.py counts
// the same with hooks on ldm's own modules, and the test holds its figures.
import type { UnetStructure } from '../src/checkpoint/structure.ts';
import { CHUNK_LENGTH } from '../src/diffusion/prompt/chunks.ts';

export interface UnetFlops {
  conv3x3: number;
  conv1x1: number;
  linear: number;
  /** q·kᵀ and the weighted sum of v, self- and cross-attention. */
  attention: number;
  total: number;
}

/** A one-chunk prompt's CLIP tokens (75, BOS and EOS), the keys and values of cross-attention. */
const CONTEXT_TOKENS = CHUNK_LENGTH + 2;

/** GFLOP of one UNet call on `batch` latents of `height`×`width` (a batch-2 CFG step: batch 2). */
export function unetGflop(s: UnetStructure, height: number, width: number, batch = 2): UnetFlops {
  const macs = { conv3x3: 0, conv1x1: 0, linear: 0, attention: 0 };
  const mc = s.modelChannels;
  const emb = 4 * mc;
  let h = height;
  let w = width;
  // at the current side: a convolution's output size
  const conv = (cin: number, cout: number, k: 1 | 3) => {
    macs[k === 3 ? 'conv3x3' : 'conv1x1'] += batch * h * w * cin * cout * k * k;
  };
  const linear = (tokens: number, cin: number, cout: number) => {
    macs.linear += batch * tokens * cin * cout;
  };
  const resBlock = (cin: number, cout: number) => {
    conv(cin, cout, 3);
    linear(1, emb, cout);
    conv(cout, cout, 3);
    if (cin !== cout) conv(cin, cout, 1);
  };
  const transformer = (ch: number) => {
    const n = h * w;
    conv(ch, ch, 1); // proj_in
    for (let d = 0; d < s.transformerDepth; d++) {
      linear(n, ch, 3 * ch); // self-attention q, k, v
      macs.attention += 2 * batch * n * n * ch;
      linear(n, ch, ch);
      linear(n, ch, ch); // cross-attention q
      linear(CONTEXT_TOKENS, s.contextDim, 2 * ch); // its k, v
      macs.attention += 2 * batch * n * CONTEXT_TOKENS * ch;
      linear(n, ch, ch);
      linear(n, ch, 8 * ch); // GEGLU's projection: value and gate
      linear(n, 4 * ch, ch);
    }
    conv(ch, ch, 1); // proj_out
  };

  linear(1, mc, emb);
  linear(1, emb, emb);
  conv(s.inChannels, mc, 3);
  const skips: { ch: number; h: number; w: number }[] = [{ ch: mc, h, w }];
  let ch = mc;
  s.channelMult.forEach((mult, level) => {
    for (let i = 0; i < (s.numResBlocks[level] ?? 0); i++) {
      resBlock(ch, mult * mc);
      ch = mult * mc;
      if (s.attention[level]) transformer(ch);
      skips.push({ ch, h, w });
    }
    if (level < s.channelMult.length - 1) {
      // a 3×3 convolution with stride 2 and padding 1: ⌈side / 2⌉
      h = Math.ceil(h / 2);
      w = Math.ceil(w / 2);
      conv(ch, ch, 3);
      skips.push({ ch, h, w });
    }
  });
  resBlock(ch, ch);
  transformer(ch);
  resBlock(ch, ch);
  for (let level = s.channelMult.length - 1; level >= 0; level--) {
    const out = (s.channelMult[level] ?? 0) * mc;
    for (let i = 0; i <= (s.numResBlocks[level] ?? 0); i++) {
      const skip = skips.pop() ?? { ch: 0, h, w };
      // unet-graph.ts resizes the upsampled map to its skip's size (A1111's cat): an odd side comes back
      h = skip.h;
      w = skip.w;
      resBlock(ch + skip.ch, out);
      ch = out;
      if (s.attention[level]) transformer(ch);
    }
    if (level > 0) {
      h *= 2;
      w *= 2;
      conv(ch, ch, 3); // the upsampler's convolution, after nearest ×2
    }
  }
  conv(ch, s.outChannels, 3); // unet-graph.ts: out.2 takes the last level's width
  const g = (m: number) => (2 * m) / 1e9;
  const out = {
    conv3x3: g(macs.conv3x3),
    conv1x1: g(macs.conv1x1),
    linear: g(macs.linear),
    attention: g(macs.attention),
  };
  return { ...out, total: out.conv3x3 + out.conv1x1 + out.linear + out.attention };
}
