/**
 * The SD 1.x UNet as ONNX: ldm's `UNetModel.forward` (openaimodel.py, Stability-AI/stablediffusion
 * @cf1d67a, the copy A1111 v1.10 pins) with `use_spatial_transformer`, `legacy=False`, no
 * scale-shift norm, learned up/down-sampling convs. The timestep is a float of shape [1] (or
 * [batch]), so A1111's fractional t goes in unrounded; its sinusoidal embedding is
 * `timestep_embedding(t, model_channels)` ([cos, sin], max period 10000), broadcast over the batch
 * wherever it is added.
 */
import type { Net } from './onnx-net.ts';
import type { UnetStructure } from './structure.ts';
import { sliceValues, transpose2d } from './tensor-data.ts';
import { UNET_PREFIX } from './weights.ts';

/** `GroupNorm32` in `normalization()`: torch's default eps. */
const RES_EPS = 1e-5;
/** `Normalize()` in attention.py (SpatialTransformer). */
const TRANSFORMER_EPS = 1e-6;

/**
 * `timestep_embedding`'s frequencies, computed as torch computes them in float32:
 * exp(-ln(10000) · arange(half) / half), each step rounded to float32.
 */
export function timestepFrequencies(dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const scale = Math.fround(-Math.log(10000));
  return Float32Array.from({ length: half }, (_, i) => Math.exp(Math.fround(Math.fround(scale * i) / half)));
}

interface Context {
  net: Net;
  s: UnetStructure;
  /** SiLU of the time embedding, [timesteps, 4·model_channels]: every ResBlock projects it. */
  embSilu: string;
  context: string;
}

const u = (k: string) => `${UNET_PREFIX}${k}`;

/** `ResBlock._forward` without up/down: in_layers, + emb_layers(emb), out_layers, + skip. */
function resBlock(c: Context, x: string, prefix: string, cin: number, cout: number): string {
  const { net, s } = c;
  let h = net.silu(net.groupNorm(x, `${prefix}.in_layers.0`, cin, RES_EPS));
  h = net.conv(h, `${prefix}.in_layers.2`, cin, cout, 3);
  const emb = net.linear(c.embSilu, `${prefix}.emb_layers.1`, 4 * s.modelChannels, cout);
  h = net.op('Add', [h, net.op('Unsqueeze', [emb, net.ints([2, 3])])]);
  h = net.silu(net.groupNorm(h, `${prefix}.out_layers.0`, cout, RES_EPS));
  h = net.conv(h, `${prefix}.out_layers.3`, cout, cout, 3);
  const skip = cin === cout ? x : net.conv(x, `${prefix}.skip_connection`, cin, cout, 1);
  return net.op('Add', [skip, h]);
}

/** `CrossAttention.forward` (to_q/k/v without bias, to_out.0 with). */
function crossAttention(c: Context, x: string, prefix: string, dim: number, ctx?: string): string {
  const { net, s } = c;
  const kv = ctx ?? x;
  const kvDim = ctx ? s.contextDim : dim;
  const q = net.linear(x, `${prefix}.to_q`, dim, dim, false);
  const k = net.linear(kv, `${prefix}.to_k`, kvDim, dim, false);
  const v = net.linear(kv, `${prefix}.to_v`, kvDim, dim, false);
  return net.linear(net.attention(q, k, v, dim, s.heads), `${prefix}.to_out.0`, dim, dim);
}

/** `FeedForward` with `GEGLU`: the projection's first half times gelu(second half), then out. */
function feedForward(c: Context, x: string, prefix: string, dim: number): string {
  const { net } = c;
  const inner = 4 * dim;
  const weight = net.read(`${prefix}.net.0.proj.weight`, [2 * inner, dim]);
  const bias = net.read(`${prefix}.net.0.proj.bias`, [2 * inner]);
  const half = (from: number) => {
    const name = `${prefix}.net.0.proj.${from === 0 ? 'value' : 'gate'}`;
    const w = transpose2d(sliceValues(weight, from * dim, (from + inner) * dim), inner, dim);
    const mm = net.op('MatMul', [x, net.constant(`${name}.weight`, w, [dim, inner])]);
    return net.op('Add', [mm, net.constant(`${name}.bias`, sliceValues(bias, from, from + inner), [inner])]);
  };
  const gated = net.op('Mul', [half(0), net.gelu(half(inner))]);
  return net.linear(gated, `${prefix}.net.2`, inner, dim);
}

/** `SpatialTransformer.forward` (conv proj_in/proj_out, `use_linear=False` as in SD 1.x). */
function spatialTransformer(c: Context, x: string, prefix: string, ch: number): string {
  const { net, s } = c;
  let h = net.groupNorm(x, `${prefix}.norm`, ch, TRANSFORMER_EPS);
  h = net.conv(h, `${prefix}.proj_in`, ch, ch, 1);
  h = net.op('Transpose', [net.op('Reshape', [h, net.ints([0, 0, -1])])], { perm: [0, 2, 1] });
  for (let d = 0; d < s.transformerDepth; d++) {
    const b = `${prefix}.transformer_blocks.${d}`;
    h = net.op('Add', [crossAttention(c, net.layerNorm(h, `${b}.norm1`, ch), `${b}.attn1`, ch), h]);
    h = net.op('Add', [
      crossAttention(c, net.layerNorm(h, `${b}.norm2`, ch), `${b}.attn2`, ch, c.context),
      h,
    ]);
    h = net.op('Add', [feedForward(c, net.layerNorm(h, `${b}.norm3`, ch), `${b}.ff`, ch), h]);
  }
  h = net.op('Reshape', [net.op('Transpose', [h], { perm: [0, 2, 1] }), net.op('Shape', [x])]);
  return net.op('Add', [net.conv(h, `${prefix}.proj_out`, ch, ch, 1), x]);
}

/**
 * A1111's `sd_hijack_unet.py::TorchHijack.cat`: before the UNet concatenates an upsampled map with
 * its skip connection, the map is resized (nearest) to the skip's height and width, which is what
 * lets A1111 run sizes that are multiples of 8 but not of 64. A no-op when they already match.
 */
function resizeLike(net: Net, x: string, like: string): string {
  const sizes = net.op(
    'Concat',
    [
      net.op('Slice', [net.op('Shape', [x]), net.ints([0]), net.ints([2])]),
      net.op('Slice', [net.op('Shape', [like]), net.ints([2]), net.ints([4])]),
    ],
    { axis: 0 },
  );
  return net.op('Resize', [x, '', '', sizes], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}

function timeEmbedding(net: Net, s: UnetStructure, timestep: string): string {
  const t = net.op('Unsqueeze', [timestep, net.ints([1])]);
  const freqs = net.g.constFloat(timestepFrequencies(s.modelChannels), [s.modelChannels / 2]);
  const args = net.op('Mul', [t, freqs]);
  const sinusoid = net.op('Concat', [net.op('Cos', [args]), net.op('Sin', [args])], { axis: 1 });
  const e = net.linear(net.fromFp32(sinusoid), u('time_embed.0'), s.modelChannels, 4 * s.modelChannels);
  return net.linear(net.silu(e), u('time_embed.2'), 4 * s.modelChannels, 4 * s.modelChannels);
}

export function buildUnetGraph(net: Net, s: UnetStructure): void {
  const g = net.g;
  const sample = g.input('sample', net.float, ['batch', s.inChannels, 'height', 'width']);
  const timestep = g.input('timestep', 'float32', ['timestep_batch']);
  const context = g.input('encoder_hidden_states', net.float, ['batch', 'sequence', s.contextDim]);
  const c: Context = { net, s, embSilu: net.silu(timeEmbedding(net, s, timestep)), context };
  const mc = s.modelChannels;
  const levels = s.channelMult.length;

  let h = net.conv(sample, u('input_blocks.0.0'), s.inChannels, mc, 3);
  const skips: { x: string; ch: number }[] = [{ x: h, ch: mc }];
  let ch = mc;
  let block = 1;
  for (let level = 0; level < levels; level++) {
    const out = mc * (s.channelMult[level] as number);
    for (let r = 0; r < (s.numResBlocks[level] as number); r++) {
      h = resBlock(c, h, u(`input_blocks.${block}.0`), ch, out);
      ch = out;
      if (s.attention[level]) h = spatialTransformer(c, h, u(`input_blocks.${block}.1`), ch);
      skips.push({ x: h, ch });
      block++;
    }
    if (level !== levels - 1) {
      h = net.conv(h, u(`input_blocks.${block}.0.op`), ch, ch, 3, { stride: 2 });
      skips.push({ x: h, ch });
      block++;
    }
  }

  h = resBlock(c, h, u('middle_block.0'), ch, ch);
  h = spatialTransformer(c, h, u('middle_block.1'), ch);
  h = resBlock(c, h, u('middle_block.2'), ch, ch);

  block = 0;
  for (let level = levels - 1; level >= 0; level--) {
    const out = mc * (s.channelMult[level] as number);
    const n = (s.numResBlocks[level] as number) + 1;
    for (let i = 0; i < n; i++) {
      const skip = skips.pop();
      if (!skip) throw new Error('UNet skip connections out of step');
      // after an upsample, a side that was odd on the way down comes back one pixel too large
      if (i === 0 && level < levels - 1) h = resizeLike(net, h, skip.x);
      h = net.op('Concat', [h, skip.x], { axis: 1 });
      const prefix = `output_blocks.${block}`;
      h = resBlock(c, h, u(`${prefix}.0`), ch + skip.ch, out);
      ch = out;
      let layer = 1;
      if (s.attention[level]) h = spatialTransformer(c, h, u(`${prefix}.${layer++}`), ch);
      if (level > 0 && i === n - 1) {
        const up = net.op('Resize', [h, '', net.g.constFloat([1, 1, 2, 2], [4])], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        });
        h = net.conv(up, u(`${prefix}.${layer}.conv`), ch, ch, 3);
      }
      block++;
    }
  }

  h = net.silu(net.groupNorm(h, u('out.0'), ch, RES_EPS));
  h = net.conv(h, u('out.2'), ch, s.outChannels, 3);
  g.op('Identity', [h], {}, 'out_sample');
  g.output('out_sample', net.float, ['batch', s.outChannels, 'height', 'width']);
}
