/**
 * What kind of file a checkpoint is, from its key names, a few shapes and its metadata, so that
 * anything but an SD 1.x text-to-image checkpoint is refused with a message saying what it is.
 * The markers are the ones A1111 v1.10 uses to pick a config (`sd_models_config.py::
 * guess_model_config_from_state_dict`): the text encoder's keys, the cross-attention width, the
 * UNet's input channels, and for SDXL the `conditioner.` keys. v-prediction cannot be read from
 * shapes; the `v_pred` key (ComfyUI's convention) and the `modelspec.prediction_type` metadata
 * are what such files carry when they say so.
 */
import path from 'node:path';
import { CheckpointError } from './checkpoint-error.ts';
import type { SafetensorsFile } from './safetensors.ts';
import { CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX } from './weights.ts';

const OLD_CLIP = 'cond_stage_model.transformer.';

function anyKey(file: SafetensorsFile, test: (k: string) => boolean): boolean {
  for (const k of file.tensors.keys()) if (test(k)) return true;
  return false;
}

function refuse(file: SafetensorsFile, what: string): never {
  throw new CheckpointError(`${path.basename(file.file)} is ${what}; hiresbot runs SD 1.x checkpoints only`);
}

/** Throws a CheckpointError saying what the file is unless it is an SD 1.x checkpoint. */
export function checkSd1Checkpoint(file: SafetensorsFile): void {
  const has = (k: string) => file.tensors.has(k);
  const shape = (k: string) => file.tensors.get(k)?.shape;
  if (anyKey(file, (k) => k.startsWith('conditioner.embedders.'))) {
    refuse(file, 'an SDXL checkpoint (it has conditioner.embedders.* text encoders)');
  }
  if (anyKey(file, (k) => /^lora_(unet|te)|\.lora_(up|down)\.|\.lora_[AB]\./.test(k))) {
    throw new CheckpointError(
      `${path.basename(file.file)} is a LoRA, not a checkpoint: hiresbot does not apply LoRAs yet`,
    );
  }
  if (!anyKey(file, (k) => k.startsWith(UNET_PREFIX))) {
    if (anyKey(file, (k) => k.startsWith('decoder.') || k.startsWith(`${VAE_PREFIX}decoder.`))) {
      throw new CheckpointError(
        `${path.basename(file.file)} is a VAE, not a checkpoint: pass it with --vae (or MODEL_VAE)`,
      );
    }
    refuse(file, `not a Stable Diffusion checkpoint (it has no ${UNET_PREFIX}* tensors)`);
  }
  if (anyKey(file, (k) => k.startsWith('cond_stage_model.model.'))) {
    refuse(file, 'an SD 2.x checkpoint (its text encoder is OpenCLIP, cond_stage_model.model.*)');
  }
  if (anyKey(file, (k) => k.startsWith(`${UNET_PREFIX}label_emb.`))) {
    refuse(file, 'a class-conditioned model (SDXL or SD 2.x unCLIP: the UNet has label_emb)');
  }
  if (anyKey(file, (k) => k.startsWith('depth_model.'))) refuse(file, 'an SD 2.x depth-to-image checkpoint');
  const inConv = shape(`${UNET_PREFIX}input_blocks.0.0.weight`);
  const inChannels = inConv?.[1];
  if (inChannels === 9) refuse(file, 'an inpainting checkpoint (its UNet takes 9 input channels)');
  if (inChannels === 8) refuse(file, 'an instruct-pix2pix checkpoint (its UNet takes 8 input channels)');
  if (inChannels === 5) refuse(file, 'a depth-to-image checkpoint (its UNet takes 5 input channels)');
  if (inChannels !== undefined && inChannels !== 4) {
    refuse(file, `an unknown model (its UNet takes ${inChannels} input channels, SD 1.x takes 4)`);
  }
  const projIn = shape(`${UNET_PREFIX}input_blocks.1.1.proj_in.weight`);
  const crossK = shape(`${UNET_PREFIX}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`);
  if (projIn?.length === 2 || crossK?.[1] === 1024) {
    refuse(file, 'an SD 2.x checkpoint (linear proj_in or 1024-wide cross-attention in the UNet)');
  }
  if (has('v_pred') || /^v(_prediction)?$/i.test(file.metadata['modelspec.prediction_type'] ?? '')) {
    refuse(file, 'a v-prediction checkpoint (it says so in its v_pred key or modelspec metadata)');
  }
  const clip = anyKey(file, (k) => k.startsWith(CLIP_PREFIX) || k.startsWith(`${OLD_CLIP}embeddings.`));
  if (!clip) {
    refuse(file, `an unknown model (it has no CLIP text encoder under ${CLIP_PREFIX}* or ${OLD_CLIP}*)`);
  }
}

/** Throws unless the file holds an AutoencoderKL (keys with or without `first_stage_model.`). */
export function checkVaeFile(file: SafetensorsFile): void {
  const name = path.basename(file.file);
  if (anyKey(file, (k) => k.startsWith(UNET_PREFIX))) {
    throw new CheckpointError(`${name} is a whole checkpoint, not a VAE: pass it as the checkpoint`);
  }
  if (!anyKey(file, (k) => k.startsWith('decoder.') || k.startsWith(`${VAE_PREFIX}decoder.`))) {
    throw new CheckpointError(
      `${name} is not a VAE: a VAE file has decoder.* and encoder.* tensors (with or without ${VAE_PREFIX})`,
    );
  }
}
