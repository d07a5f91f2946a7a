/**
 * An SD 1.x checkpoint's structure read from its tensor shapes (ldm's `v1-inference.yaml` gives the
 * standard values; fine-tunes and the tiny test checkpoint keep the layout and may change widths):
 * UNet width, levels, res blocks per level, which levels attend, transformer depth and context
 * width; CLIP width, layers and vocabulary; VAE width, levels and latent channels. The attention
 * head counts are not in any shape: SD 1.x uses 8 UNet heads (`num_heads: 8`) and CLIP one head
 * per 64 channels (ViT-L/14's 12 × 64), which is what these assume.
 */
import { CheckpointError } from './checkpoint-error.ts';
import { CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX, type WeightStore } from './weights.ts';

export interface UnetStructure {
  inChannels: number;
  outChannels: number;
  modelChannels: number;
  /** Channels of each level = modelChannels × mult. */
  channelMult: number[];
  /** Res blocks per level on the way down (one more on the way up). */
  numResBlocks: number[];
  /** Whether each level has a spatial transformer after its res blocks. */
  attention: boolean[];
  transformerDepth: number;
  contextDim: number;
  heads: number;
}

export interface ClipStructure {
  vocab: number;
  positions: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
}

export interface VaeStructure {
  ch: number;
  chMult: number[];
  numResBlocks: number;
  zChannels: number;
  imageChannels: number;
  /** Whether each level has attention blocks (none in SD's VAE; the middle always has one). */
  encoderAttention: boolean[];
  decoderAttention: boolean[];
}

export interface Sd1Structure {
  unet: UnetStructure;
  clip: ClipStructure;
  vae: VaeStructure;
}

/** SD 1.x: `num_heads: 8` in v1-inference.yaml. */
const UNET_HEADS = 8;
const CLIP_HEAD_WIDTH = 64;
/** Rows the token embedding needs: the SD 1.x CLIP vocabulary the import writes (ids 0 to 49407). */
const CLIP_VOCAB = 49408;
/** Positions one prompt chunk takes: 75 tokens between start- and end-of-text. */
const CLIP_TOKENS = 77;
/** SD 1.x's latent channels: the UNet predicts noise for exactly what it takes. */
const LATENT_CHANNELS = 4;

function count(w: WeightStore, key: (i: number) => string): number {
  let n = 0;
  while (w.has(key(n))) n++;
  return n;
}

function need(w: WeightStore, key: string, rank: number, part: string): readonly number[] {
  const shape = w.shape(key);
  if (!shape) throw new CheckpointError(`${w.fileFor(key)} has no tensor "${key}", which ${part} needs`);
  if (shape.length !== rank) {
    throw new CheckpointError(
      `${w.fileFor(key)}: tensor "${key}" has shape [${shape.join(', ')}], expected ${rank} dimensions for ${part}`,
    );
  }
  return shape;
}

function unetStructure(w: WeightStore): UnetStructure {
  const u = (k: string) => `${UNET_PREFIX}${k}`;
  const part = 'the UNet';
  const [modelChannels = 0, inChannels = 0] = need(w, u('input_blocks.0.0.weight'), 4, part);
  const channels: number[] = [];
  const numResBlocks: number[] = [];
  const attention: boolean[] = [];
  let blocks = 0;
  for (let i = 1; ; i++) {
    if (w.has(u(`input_blocks.${i}.0.op.weight`))) {
      numResBlocks.push(blocks);
      blocks = 0;
      continue;
    }
    const out = u(`input_blocks.${i}.0.in_layers.2.weight`);
    if (!w.has(out)) break;
    if (blocks === 0) {
      channels.push(need(w, out, 4, part)[0] ?? 0);
      attention.push(w.has(u(`input_blocks.${i}.1.proj_in.weight`)));
    }
    blocks++;
  }
  numResBlocks.push(blocks);
  const levels = numResBlocks.length;
  const widths = channels;
  if (widths.length !== levels || numResBlocks.some((n) => n === 0)) {
    throw new CheckpointError(`${w.fileFor(u(''))}: the UNet's input_blocks do not have SD 1.x's layout`);
  }
  const channelMult = widths.map((c) => c / modelChannels);
  const first = attention.indexOf(true);
  if (first < 0) throw new CheckpointError(`${w.fileFor(u(''))}: the UNet has no cross-attention layers`);
  const firstAttn = 1 + numResBlocks.slice(0, first).reduce((a, n) => a + n + 1, 0);
  const block = (d: number) => u(`input_blocks.${firstAttn}.1.transformer_blocks.${d}`);
  const [, contextDim = 0] = need(w, `${block(0)}.attn2.to_k.weight`, 2, part);
  const [outChannels = 0] = need(w, u('out.2.weight'), 4, part);
  if (outChannels !== LATENT_CHANNELS) {
    throw new CheckpointError(
      `${w.fileFor(u(''))}: the UNet puts out ${outChannels} channels; SD 1.x's predicts the ${LATENT_CHANNELS} latent channels it takes`,
    );
  }
  if (channelMult.some((m) => !Number.isInteger(m)) || widths.some((c) => c % 32 !== 0 || c % UNET_HEADS)) {
    throw new CheckpointError(
      `${w.fileFor(u(''))}: UNet widths ${widths.join(', ')} are not SD 1.x's (multiples of 32 and of ${modelChannels})`,
    );
  }
  return {
    inChannels,
    outChannels,
    modelChannels,
    channelMult,
    numResBlocks,
    attention,
    transformerDepth: count(w, (d) => `${block(d)}.norm1.weight`),
    contextDim,
    heads: UNET_HEADS,
  };
}

function clipStructure(w: WeightStore, contextDim: number): ClipStructure {
  const c = (k: string) => `${CLIP_PREFIX}${k}`;
  const part = 'the CLIP text encoder';
  const [vocab = 0, hidden = 0] = need(w, c('embeddings.token_embedding.weight'), 2, part);
  const [positions = 0] = need(w, c('embeddings.position_embedding.weight'), 2, part);
  const [intermediate = 0] = need(w, c('encoder.layers.0.mlp.fc1.weight'), 2, part);
  if (hidden !== contextDim) {
    throw new CheckpointError(
      `${w.fileFor(c(''))}: the CLIP text encoder is ${hidden} wide but the UNet's cross-attention takes ${contextDim}: not an SD 1.x checkpoint`,
    );
  }
  if (vocab !== CLIP_VOCAB) {
    throw new CheckpointError(
      `${w.fileFor(c(''))}: the CLIP text encoder has a ${vocab}-token vocabulary; SD 1.x's tokenizer needs ${CLIP_VOCAB}`,
    );
  }
  if (positions < CLIP_TOKENS) {
    throw new CheckpointError(
      `${w.fileFor(c(''))}: the CLIP text encoder has ${positions} positions; SD 1.x's prompts need ${CLIP_TOKENS}`,
    );
  }
  const heads = Math.max(1, Math.floor(hidden / CLIP_HEAD_WIDTH));
  if (hidden % heads !== 0) {
    throw new CheckpointError(`${w.fileFor(c(''))}: CLIP width ${hidden} does not split into ${heads} heads`);
  }
  const layers = count(w, (i) => c(`encoder.layers.${i}.layer_norm1.weight`));
  return { vocab, positions, hidden, layers, heads, intermediate };
}

function vaeStructure(w: WeightStore): VaeStructure {
  const v = (k: string) => `${VAE_PREFIX}${k}`;
  const part = 'the VAE';
  const [ch = 0, imageChannels = 0] = need(w, v('encoder.conv_in.weight'), 4, part);
  const [, zChannels = 0] = need(w, v('decoder.conv_in.weight'), 4, part);
  const levels = count(w, (i) => v(`encoder.down.${i}.block.0.conv1.weight`));
  const numResBlocks = count(w, (j) => v(`encoder.down.0.block.${j}.conv1.weight`));
  const chMult: number[] = [];
  for (let i = 0; i < levels; i++) {
    const [out = 0] = need(w, v(`encoder.down.${i}.block.0.conv2.weight`), 4, part);
    chMult.push(out / ch);
  }
  if (levels === 0 || numResBlocks === 0 || chMult.some((m) => !Number.isInteger(m) || (m * ch) % 32 !== 0)) {
    throw new CheckpointError(`${w.fileFor(v(''))}: the VAE does not have SD's AutoencoderKL layout`);
  }
  const level = (side: string, kind: string) =>
    Array.from({ length: levels }, (_, i) => w.has(v(`${side}.${kind}.${i}.attn.0.norm.weight`)));
  return {
    ch,
    chMult,
    numResBlocks,
    zChannels,
    imageChannels,
    encoderAttention: level('encoder', 'down'),
    decoderAttention: level('decoder', 'up'),
  };
}

export function readStructure(w: WeightStore): Sd1Structure {
  const unet = unetStructure(w);
  return { unet, clip: clipStructure(w, unet.contextDim), vae: vaeStructure(w) };
}
