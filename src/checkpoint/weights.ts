/**
 * The checkpoint's tensors under one naming: A1111's single-file keys (`model.diffusion_model.*`,
 * `cond_stage_model.transformer.text_model.*`, `first_stage_model.*`). Older checkpoints keep the
 * text encoder under `cond_stage_model.transformer.*` (transformers before 4.x put no `text_model`
 * level), and an external VAE ("SD VAE") has the `first_stage_model.*` keys with or without that
 * prefix; both are found here, so the graph builders ask for one name only. Everything else in
 * the file (EMA copies, the noise schedule's buffers, position_ids) is never asked for.
 *
 * The seam for LoRA and textual inversion is `WeightPatch`: it sees every weight the graphs use,
 * by that key, before it is written, so a LoRA merges its low-rank update here (same shape). A
 * textual inversion embedding would append rows to the token embedding here; the CLIP graph takes
 * its vocabulary size from that tensor's shape, so `shape()` would have to report the grown one.
 */
import { CheckpointError } from './checkpoint-error.ts';
import type { SafetensorsFile, TensorEntry } from './safetensors.ts';
import { decodeValues, toFloat32, type Values } from './tensor-data.ts';

export const UNET_PREFIX = 'model.diffusion_model.';
export const CLIP_PREFIX = 'cond_stage_model.transformer.text_model.';
export const VAE_PREFIX = 'first_stage_model.';
const OLD_CLIP_PREFIX = 'cond_stage_model.transformer.';

/** Rewrites a weight (by its A1111 key) before it is written; returns the values to write. */
export type WeightPatch = (key: string, shape: readonly number[], values: Float32Array) => Float32Array;

export interface WeightOptions {
  patch?: WeightPatch;
  /** Called with the bytes of each tensor read, for a progress bar. */
  onRead?: (bytes: number) => void;
}

interface Located {
  file: SafetensorsFile;
  entry: TensorEntry;
}

export class WeightStore {
  constructor(
    private readonly checkpoint: SafetensorsFile,
    private readonly vae: SafetensorsFile | undefined,
    private readonly options: WeightOptions = {},
  ) {}

  /** Where the tensor named `key` (A1111 single-file naming) lives, if anywhere. */
  locate(key: string): Located | undefined {
    const at = (file: SafetensorsFile, name: string): Located | undefined => {
      const entry = file.tensors.get(name);
      return entry ? { file, entry } : undefined;
    };
    if (key.startsWith(VAE_PREFIX) && this.vae) {
      return at(this.vae, key.slice(VAE_PREFIX.length)) ?? at(this.vae, key);
    }
    if (key.startsWith(CLIP_PREFIX)) {
      return at(this.checkpoint, key) ?? at(this.checkpoint, OLD_CLIP_PREFIX + key.slice(CLIP_PREFIX.length));
    }
    return at(this.checkpoint, key);
  }

  shape(key: string): readonly number[] | undefined {
    return this.locate(key)?.entry.shape;
  }

  has(key: string): boolean {
    return this.locate(key) !== undefined;
  }

  /** The file a key is read from (the external VAE for VAE keys when there is one). */
  fileFor(key: string): string {
    return key.startsWith(VAE_PREFIX) && this.vae ? this.vae.file : this.checkpoint.file;
  }

  /**
   * The tensor's values, checked against the shape the model's structure implies; a missing key,
   * another shape or a non-float dtype is a one-line CheckpointError naming the tensor.
   */
  read(key: string, shape: readonly number[], part: string): Values {
    const found = this.locate(key);
    if (!found) throw new CheckpointError(`${this.fileFor(key)} has no tensor "${key}", which ${part} needs`);
    const { file, entry } = found;
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `${file.file}: tensor "${entry.name}" has shape [${entry.shape.join(', ')}], expected [${shape.join(', ')}] for ${part}`,
      );
    }
    let values: Values;
    try {
      values = decodeValues(entry.name, entry.dtype, file.read(entry));
    } catch (err) {
      if (err instanceof CheckpointError && !err.message.startsWith(file.file)) {
        throw new CheckpointError(`${file.file}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    this.options.onRead?.(entry.byteLength);
    if (!this.options.patch) return values;
    return { kind: 'f32', data: this.options.patch(key, shape, toFloat32(values)) };
  }
}
