/**
 * SD's KL autoencoder as two ONNX graphs, after ldm's `Decoder` and `Encoder`
 * (ldm/modules/diffusionmodules/model.py @cf1d67a) with `AutoencoderKL`'s 1×1 convs around them:
 * - decoder: `latent_sample` (already divided by the scaling factor) → post_quant_conv → Decoder
 *   → `sample`, the image in about [-1, 1] before clamping;
 * - encoder: `sample` → Encoder → quant_conv → `latent_parameters`, the latent distribution's
 *   mean (first half of the channels) and log-variance, as optimum's export names it.
 * Group norms use eps 1e-6 (`Normalize`); downsampling pads right and bottom by one (ldm's
 * asymmetric `Downsample`); the attention is one head over all pixels (`AttnBlock`).
 */
import type { Net } from './onnx-net.ts';
import type { VaeStructure } from './structure.ts';
import { VAE_PREFIX } from './weights.ts';

const EPS = 1e-6;
const v = (k: string) => `${VAE_PREFIX}${k}`;

/** `ResnetBlock` without a time embedding: norm1, swish, conv1, norm2, swish, conv2, + shortcut. */
function resnetBlock(net: Net, x: string, prefix: string, cin: number, cout: number): string {
  let h = net.conv(net.silu(net.groupNorm(x, `${prefix}.norm1`, cin, EPS)), `${prefix}.conv1`, cin, cout, 3);
  h = net.conv(net.silu(net.groupNorm(h, `${prefix}.norm2`, cout, EPS)), `${prefix}.conv2`, cout, cout, 3);
  const skip = cin === cout ? x : net.conv(x, `${prefix}.nin_shortcut`, cin, cout, 1);
  return net.op('Add', [skip, h]);
}

/**
 * `AttnBlock`: single-head attention over the h·w pixels with 1×1-conv q/k/v/proj_out (stored as
 * [C, C, 1, 1]; VAEs converted from diffusers may store them as [C, C], which is the same matrix).
 */
function attnBlock(net: Net, x: string, prefix: string, ch: number): string {
  const h = net.groupNorm(x, `${prefix}.norm`, ch, EPS);
  const tokens = net.op('Transpose', [net.op('Reshape', [h, net.ints([0, 0, -1])])], { perm: [0, 2, 1] });
  const proj = (name: string, input: string) => {
    const key = `${prefix}.${name}`;
    const stored = weightShape(net, `${key}.weight`, ch);
    const w = net.param(`${key}.weight`, stored, { as: [ch, ch], transpose: true });
    return net.op('Add', [net.op('MatMul', [input, w]), net.param(`${key}.bias`, [ch])]);
  };
  const attended = net.attention(proj('q', tokens), proj('k', tokens), proj('v', tokens), ch, 1);
  const out = proj('proj_out', attended);
  const back = net.op('Reshape', [net.op('Transpose', [out], { perm: [0, 2, 1] }), net.op('Shape', [x])]);
  return net.op('Add', [x, back]);
}

function weightShape(net: Net, key: string, ch: number): number[] {
  return net.storedRank(key) === 2 ? [ch, ch] : [ch, ch, 1, 1];
}

function middle(net: Net, h: string, side: string, ch: number): string {
  let x = resnetBlock(net, h, v(`${side}.mid.block_1`), ch, ch);
  x = attnBlock(net, x, v(`${side}.mid.attn_1`), ch);
  return resnetBlock(net, x, v(`${side}.mid.block_2`), ch, ch);
}

export function buildVaeDecoderGraph(net: Net, s: VaeStructure): void {
  const g = net.g;
  const z = g.input('latent_sample', net.float, ['batch', s.zChannels, 'latent_height', 'latent_width']);
  const levels = s.chMult.length;
  let ch = s.ch * (s.chMult[levels - 1] as number);
  let h = net.conv(z, v('post_quant_conv'), s.zChannels, s.zChannels, 1);
  h = net.conv(h, v('decoder.conv_in'), s.zChannels, ch, 3);
  h = middle(net, h, 'decoder', ch);
  for (let level = levels - 1; level >= 0; level--) {
    const out = s.ch * (s.chMult[level] as number);
    for (let b = 0; b <= s.numResBlocks; b++) {
      h = resnetBlock(net, h, v(`decoder.up.${level}.block.${b}`), ch, out);
      ch = out;
      if (s.decoderAttention[level]) h = attnBlock(net, h, v(`decoder.up.${level}.attn.${b}`), ch);
    }
    if (level !== 0) {
      const up = net.op('Resize', [h, '', g.constFloat([1, 1, 2, 2], [4])], {
        mode: 'nearest',
        coordinate_transformation_mode: 'asymmetric',
        nearest_mode: 'floor',
      });
      h = net.conv(up, v(`decoder.up.${level}.upsample.conv`), ch, ch, 3);
    }
  }
  h = net.silu(net.groupNorm(h, v('decoder.norm_out'), ch, EPS));
  h = net.conv(h, v('decoder.conv_out'), ch, s.imageChannels, 3);
  g.op('Identity', [h], {}, 'sample');
  g.output('sample', net.float, ['batch', s.imageChannels, 'height', 'width']);
}

export function buildVaeEncoderGraph(net: Net, s: VaeStructure): void {
  const g = net.g;
  const image = g.input('sample', net.float, ['batch', s.imageChannels, 'height', 'width']);
  const levels = s.chMult.length;
  let ch = s.ch;
  let h = net.conv(image, v('encoder.conv_in'), s.imageChannels, ch, 3);
  for (let level = 0; level < levels; level++) {
    const out = s.ch * (s.chMult[level] as number);
    for (let b = 0; b < s.numResBlocks; b++) {
      h = resnetBlock(net, h, v(`encoder.down.${level}.block.${b}`), ch, out);
      ch = out;
      if (s.encoderAttention[level]) h = attnBlock(net, h, v(`encoder.down.${level}.attn.${b}`), ch);
    }
    if (level !== levels - 1) {
      // torch pads (0, 1, 0, 1) then convolves without padding: pads = [top, left, bottom, right]
      h = net.conv(h, v(`encoder.down.${level}.downsample.conv`), ch, ch, 3, {
        stride: 2,
        pads: [0, 0, 1, 1],
      });
    }
  }
  h = middle(net, h, 'encoder', ch);
  h = net.silu(net.groupNorm(h, v('encoder.norm_out'), ch, EPS));
  const moments = 2 * s.zChannels;
  h = net.conv(h, v('encoder.conv_out'), ch, moments, 3);
  h = net.conv(h, v('quant_conv'), moments, moments, 1);
  g.op('Identity', [h], {}, 'latent_parameters');
  g.output('latent_parameters', net.float, ['batch', moments, 'latent_height', 'latent_width']);
}
