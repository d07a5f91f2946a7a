/**
 * An A1111 single-file SD 1.x checkpoint (and optionally an external VAE) → the ONNX folder the
 * loader reads: text_encoder/, unet/, vae_decoder/, vae_encoder/ (each model.onnx with its weights
 * in model.onnx_data), tokenizer/, model_index.json and checkpoint.json (the source file's name
 * and hashes, for the infotext). Written into a temporary folder beside `out` and renamed at the
 * end, so a failure (a truncated file, a wrong shape, a full disk) leaves nothing half-written.
 * Weights stream from the file to the external data one tensor at a time.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
import { leftBehind } from '../diffusion/model/left-behind.ts';
import { sha256File } from '../diffusion/model/model-hash.ts';
import {
  CHECKPOINT_SOURCE_FILE,
  type CheckpointSource,
  type SourceFile,
} from '../diffusion/model/model-identity.ts';
import { GraphBuilder } from '../diffusion/model/onnx-graph.ts';
import { kernelFolderRefusal } from '../kernel-folder.ts';
import { makeFolder } from '../make-folder.ts';
import { writeRefusal } from '../write-error.ts';
import { CheckpointError } from './checkpoint-error.ts';
import { buildClipGraph } from './clip-graph.ts';
import { ExternalDataFile } from './external-data.ts';
import { checkSd1Checkpoint, checkVaeFile } from './family.ts';
import { oldModelHash } from './old-hash.ts';
import { Net, type Precision } from './onnx-net.ts';
import { SafetensorsFile } from './safetensors.ts';
import { readStructure, type Sd1Structure } from './structure.ts';
import { buildUnetGraph } from './unet-graph.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from './vae-graph.ts';
import { UNET_PREFIX, VAE_PREFIX, type WeightPatch, WeightStore } from './weights.ts';

/** Bump when the graphs change: cached imports made by an older importer are redone. */
export const IMPORTER_VERSION = 3;

/** SD 1.x's VAE latent scale (v1-inference.yaml `scale_factor`). */
const SCALING_FACTOR = 0.18215;

/** The real SD 1.x CLIP tokenizer files, shipped with hiresbot (a checkpoint has no tokenizer). */
export const TOKENIZER_DIR = path.resolve(import.meta.dirname, '..', '..', 'assets', 'sd1-clip-tokenizer');

export interface ImportProgress {
  stage: 'hashing' | 'text_encoder' | 'unet' | 'vae_decoder' | 'vae_encoder';
  /** Bytes hashed or read so far, of `total` (both stages together). */
  done: number;
  total: number;
}

export interface ImportOptions {
  vae?: string | undefined;
  dtype: Precision;
  /** The LoRA / textual-inversion seam (see weights.ts). */
  patch?: WeightPatch;
  onProgress?: (p: ImportProgress) => void;
  /** The option or variable that chose `out`, for a full disk's message (default --out). */
  outSetting?: string;
  /** Hashes already known (the cache computed them to decide): skips hashing again. */
  sha256?: { model?: string; vae?: string };
}

export interface ImportResult {
  dir: string;
  source: CheckpointSource;
  structure: Sd1Structure;
}

/** The temporary folders this process's imports are writing (removed at once on SIGINT/SIGTERM). */
const unfinished = new Set<string>();

/** Set once the process is stopping: an import not yet writing (hashing, or still to come) gives up too. */
let stopping = false;

function giveUpIfStopping(): void {
  if (stopping) throw new CheckpointError('the import was stopped: the process is stopping');
}

/**
 * Removes every temporary folder an import of this process is writing, and stops every import
 * from going on or starting: for a signal handler, which then exits. It runs between parts (each
 * part's graph is written synchronously), see `nextTurn`, or between the hashing's chunks.
 */
export function removeUnfinishedImports(): void {
  stopping = true;
  for (const dir of unfinished) rmSync(dir, { recursive: true, force: true });
  unfinished.clear();
}

/** Longest `out` name kept whole in the temporary name (the whole stays under 255 bytes). */
const NAME_KEPT = 100;

/**
 * `.<out's name>.importing-`, then `<pid>-<hex>`: beside `out`, so that the final rename stays on
 * one file system. A longer name is cut and followed by `~` and a hash of the whole name, so that
 * names sharing their first 100 characters never sweep each other's folders (a cut name is longer
 * than any whole one, so the two kinds never meet either).
 */
function temporaryPrefix(out: string): string {
  const name = path.basename(out);
  if (name.length <= NAME_KEPT) return `.${name}.importing-`;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `.${name.slice(0, NAME_KEPT)}~${hash}.importing-`;
}

/** Refuses an `out` under a file before any work (the hashing alone reads the whole checkpoint). */
function checkParentIsFolder(out: string): void {
  for (let dir = path.dirname(path.resolve(out)); ; dir = path.dirname(dir)) {
    const stats = statSync(dir, { throwIfNoEntry: false });
    if (stats) {
      if (!stats.isDirectory()) throw new CheckpointError(`${out}: ${dir} is not a folder`);
      return; // the folders below it are made
    }
    if (dir === path.dirname(dir)) return;
  }
}

/**
 * Removes the temporary folders that killed imports into exactly `out` left beside it (SIGKILL,
 * power loss): those abandoned for a while (see left-behind.ts), never another live import's.
 */
function removeLeftBehind(out: string): void {
  const parent = path.dirname(out);
  const prefix = temporaryPrefix(out);
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return; // no parent folder yet: nothing left in it
  }
  for (const entry of entries) {
    const m = /^(\d+)-[0-9a-f]+$/.exec(entry.startsWith(prefix) ? entry.slice(prefix.length) : '');
    const dir = path.join(parent, entry);
    if (m && leftBehind(dir, Number(m[1]))) rmSync(dir, { recursive: true, force: true });
  }
}

/** Cleanup after a failure: its own failure must never hide the error that is being reported. */
export function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // the original error says what went wrong; a leftover goes at the next import
  }
}

/** Lets the event loop turn: a signal's handler runs here, not after the whole import. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function nameOf(file: string): string {
  return path.basename(file, path.extname(file));
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Every file under `dir` (its path relative to `dir`, `/`-separated) and its size. */
function fileSizes(dir: string): Record<string, number> {
  const sizes: Record<string, number> = {};
  // walked by hand: Dirent.parentPath (readdir's recursive listing) arrived only in Node 20.12
  const walk = (sub: string) => {
    for (const entry of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile()) sizes[rel] = statSync(path.join(dir, rel)).size;
    }
  };
  walk('');
  return sizes;
}

/** Bytes of the tensors the graphs will read: the total for the progress bar. */
function tensorBytes(ckpt: SafetensorsFile, vae: SafetensorsFile | undefined): number {
  let total = 0;
  for (const [k, e] of ckpt.tensors) {
    if (k.startsWith(UNET_PREFIX) || k.startsWith('cond_stage_model.')) total += e.byteLength;
    else if (!vae && k.startsWith(VAE_PREFIX)) total += e.byteLength;
  }
  for (const e of vae?.tensors.values() ?? []) total += e.byteLength;
  return total;
}

const PARTS = [
  ['text_encoder', 'the CLIP text encoder', (n: Net, s: Sd1Structure) => buildClipGraph(n, s.clip)],
  ['unet', 'the UNet', (n: Net, s: Sd1Structure) => buildUnetGraph(n, s.unet)],
  ['vae_decoder', 'the VAE decoder', (n: Net, s: Sd1Structure) => buildVaeDecoderGraph(n, s.vae)],
  ['vae_encoder', 'the VAE encoder', (n: Net, s: Sd1Structure) => buildVaeEncoderGraph(n, s.vae)],
] as const;

function writeConfigs(dir: string, s: Sd1Structure): void {
  writeJson(path.join(dir, 'model_index.json'), {
    _class_name: 'StableDiffusionPipeline',
    _diffusers_version: '0.30.0',
    _hiresbot_import: `imported from a single-file checkpoint; see ${CHECKPOINT_SOURCE_FILE}`,
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  writeJson(path.join(dir, 'text_encoder', 'config.json'), {
    hidden_size: s.clip.hidden,
    num_hidden_layers: s.clip.layers,
    num_attention_heads: s.clip.heads,
    intermediate_size: s.clip.intermediate,
    max_position_embeddings: s.clip.positions,
    vocab_size: s.clip.vocab,
  });
  writeJson(path.join(dir, 'unet', 'config.json'), {
    _class_name: 'UNet2DConditionModel',
    in_channels: s.unet.inChannels,
    block_out_channels: s.unet.channelMult.map((m) => m * s.unet.modelChannels),
    layers_per_block: s.unet.numResBlocks[0],
    cross_attention_dim: s.unet.contextDim,
    attention_head_dim: s.unet.heads,
  });
  for (const part of ['vae_decoder', 'vae_encoder']) {
    writeJson(path.join(dir, part, 'config.json'), {
      _class_name: 'AutoencoderKL',
      latent_channels: s.vae.zChannels,
      block_out_channels: s.vae.chMult.map((m) => m * s.vae.ch),
      scaling_factor: SCALING_FACTOR,
    });
  }
}

async function describe(
  file: string,
  known: string | undefined,
  onBytes: (n: number) => void,
): Promise<SourceFile> {
  const { size, mtimeMs } = statSync(file);
  const sha256 = known ?? (await sha256File(file, onBytes));
  if (known) onBytes(size);
  return { name: nameOf(file), file: path.resolve(file), size, mtimeMs, sha256 };
}

export async function importCheckpoint(
  file: string,
  out: string,
  options: ImportOptions,
): Promise<ImportResult> {
  // typed arrays are written as they lie in memory; ONNX wants little-endian
  if (endianness() !== 'LE') throw new CheckpointError('importing checkpoints needs a little-endian machine');
  giveUpIfStopping();
  if (existsSync(out)) throw new CheckpointError(`${out} already exists: remove it or choose another folder`);
  const kernel = kernelFolderRefusal(out, options.outSetting ?? '--out');
  if (kernel) throw new CheckpointError(kernel);
  const ckpt = SafetensorsFile.open(file);
  let vae: SafetensorsFile | undefined;
  checkParentIsFolder(out);
  removeLeftBehind(out);
  const tmp = path.join(
    path.dirname(out),
    `${temporaryPrefix(out)}${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  /** The file being written, as it will be named in `out`. */
  let writing = out;
  try {
    checkSd1Checkpoint(ckpt);
    if (options.vae) {
      vae = SafetensorsFile.open(options.vae);
      checkVaeFile(vae);
    }
    let done = 0;
    const hashBytes = ckpt.size + (vae?.size ?? 0);
    const total = hashBytes + tensorBytes(ckpt, vae);
    let stage: ImportProgress['stage'] = 'hashing';
    const advance = (n: number) => {
      giveUpIfStopping(); // the hashing alone may take a minute
      done += n;
      options.onProgress?.({ stage, done: Math.min(done, total), total });
    };
    const weights = new WeightStore(ckpt, vae, {
      onRead: advance,
      ...(options.patch ? { patch: options.patch } : {}),
    });
    const structure = readStructure(weights);

    const model = await describe(file, options.sha256?.model, advance);
    const vaeSource = options.vae ? await describe(options.vae, options.sha256?.vae, advance) : null;
    const source: CheckpointSource = {
      importer: IMPORTER_VERSION,
      dtype: options.dtype,
      model: { ...model, oldHash: oldModelHash(file) },
      vae: vaeSource,
    };

    unfinished.add(tmp);
    makeFolder(tmp);
    for (const [part, what, build] of PARTS) {
      await nextTurn();
      giveUpIfStopping();
      stage = part;
      const dir = path.join(tmp, part);
      mkdirSync(dir);
      writing = path.join(out, part, 'model.onnx_data');
      const sink = new ExternalDataFile(path.join(dir, 'model.onnx_data'));
      try {
        const g = new GraphBuilder(sink);
        build(new Net(g, weights, options.dtype, what), structure);
        writing = path.join(out, part, 'model.onnx');
        g.write(dir, part, 17);
      } finally {
        sink.close();
      }
    }
    options.onProgress?.({ stage, done: total, total });
    writing = out;
    writeConfigs(tmp, structure);
    cpSync(TOKENIZER_DIR, path.join(tmp, 'tokenizer'), { recursive: true });
    // written last, with what it describes: the cache finds a damaged folder by these sizes
    writeJson(path.join(tmp, CHECKPOINT_SOURCE_FILE), { ...source, structure, files: fileSizes(tmp) });
    await nextTurn();
    giveUpIfStopping();
    renameSync(tmp, out);
    return { dir: out, source, structure };
  } catch (err) {
    removeQuietly(tmp);
    // a full disk (or the like) names the file as it would have been called in `out`
    const named = (err as NodeJS.ErrnoException).path?.replace(tmp, out) ?? writing;
    const refusal = writeRefusal(err, named, options.outSetting ?? '--out', path.dirname(out));
    throw refusal ? new CheckpointError(refusal, { cause: err }) : err;
  } finally {
    unfinished.delete(tmp);
    ckpt.close();
    vae?.close();
  }
}
