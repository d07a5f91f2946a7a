/**
 * The CLIP text encoder as ONNX: transformers' `CLIPTextModel` (modeling_clip.py, as A1111 v1.10
 * runs it with transformers 4.30: `CLIPTextTransformer.forward`) up to `last_hidden_state`, the
 * output after the final layer norm (A1111's clip skip 1). Token + position embeddings, then per
 * layer x += attn(ln1(x)) with a causal mask and x += fc2(quick_gelu(fc1(ln2(x)))), then the
 * final layer norm. No padding mask: A1111 passes none and pads with the end token.
 */
import type { Net } from './onnx-net.ts';
import type { ClipStructure } from './structure.ts';
import { CLIP_PREFIX } from './weights.ts';

/** What transformers adds to masked logits (`torch.finfo(float32).min`); any huge value zeroes them. */
const MASKED = -3.4028234663852886e38;

export function buildClipGraph(net: Net, s: ClipStructure): void {
  const g = net.g;
  const c = (k: string) => `${CLIP_PREFIX}${k}`;
  const ids = g.input('input_ids', 'int32', ['batch', 'sequence']);
  const seq = net.op('Slice', [net.op('Shape', [ids]), net.ints([1]), net.ints([2])]);

  const tokens = net.op('Gather', [
    net.param(c('embeddings.token_embedding.weight'), [s.vocab, s.hidden]),
    ids,
  ]);
  const allPositions = net.param(c('embeddings.position_embedding.weight'), [s.positions, s.hidden]);
  const positions = net.op('Slice', [allPositions, net.ints([0]), seq, net.ints([0])]);
  let x = net.op('Add', [tokens, positions]);

  // causal mask: token i attends to tokens 0..i
  const causal = new Float32Array(s.positions * s.positions);
  for (let i = 0; i < s.positions; i++)
    for (let j = i + 1; j < s.positions; j++) causal[i * s.positions + j] = MASKED;
  const full = g.constFloat(causal, [s.positions, s.positions]);
  const twice = net.op('Concat', [seq, seq], { axis: 0 });
  const mask = net.op('Slice', [full, net.ints([0, 0]), twice, net.ints([0, 1])]);

  for (let i = 0; i < s.layers; i++) {
    const l = (k: string) => c(`encoder.layers.${i}.${k}`);
    const h = net.layerNorm(x, l('layer_norm1'), s.hidden);
    const q = net.linear(h, l('self_attn.q_proj'), s.hidden, s.hidden);
    const k = net.linear(h, l('self_attn.k_proj'), s.hidden, s.hidden);
    const v = net.linear(h, l('self_attn.v_proj'), s.hidden, s.hidden);
    const attn = net.attention(q, k, v, s.hidden, s.heads, mask);
    x = net.op('Add', [x, net.linear(attn, l('self_attn.out_proj'), s.hidden, s.hidden)]);
    const h2 = net.layerNorm(x, l('layer_norm2'), s.hidden);
    const mlp = net.quickGelu(net.linear(h2, l('mlp.fc1'), s.hidden, s.intermediate));
    x = net.op('Add', [x, net.linear(mlp, l('mlp.fc2'), s.intermediate, s.hidden)]);
  }
  const out = net.layerNorm(x, c('final_layer_norm'), s.hidden);
  g.op('Identity', [out], {}, 'last_hidden_state');
  g.output('last_hidden_state', net.float, ['batch', 'sequence', s.hidden]);
}
