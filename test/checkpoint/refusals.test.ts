// Every file the importer must refuse, each built from the good tiny checkpoint: a one-line
// CheckpointError saying what is wrong (naming the tensor where one is at fault), and nothing left
// behind: neither the output folder nor the temporary one beside it.
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/checkpoint/checkpoint-error.ts';
import { importCheckpoint } from '../../src/checkpoint/import.ts';
import { SafetensorsFile } from '../../src/checkpoint/safetensors.ts';
import {
  type RawTensor,
  rewriteTiny,
  TINY_CHECKPOINT,
  TINY_VAE,
  writeHeaderAndData,
  zerosF16,
} from '../support/safetensors.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-refusals-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let counter = 0;
function fileIn(name: string): string {
  return path.join(work, `${counter++}-${name}`);
}

/** Imports `file` expecting a refusal; returns the message after checking nothing was left. */
async function refusal(file: string, vae?: string): Promise<string> {
  const out = path.join(work, `out-${counter++}`);
  const before = readdirSync(work).length;
  const err = await importCheckpoint(file, out, { dtype: 'fp32', vae }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  const message = (err as Error).message;
  expect(message).not.toContain('\n');
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(work).filter((n) => n.includes('.importing-'))).toEqual([]);
  expect(readdirSync(work).length).toBe(before);
  return message;
}

const edit = (
  name: string,
  change: (tensors: RawTensor[]) => RawTensor[],
  metadata?: Record<string, string>,
) => {
  const file = fileIn(`${name}.safetensors`);
  rewriteTiny(file, change, metadata);
  return file;
};

const replace = (key: string, shape: number[]) => (tensors: RawTensor[]) =>
  tensors.map((t) => (t.name === key ? zerosF16(key, shape) : t));

const U = 'model.diffusion_model.';

describe('what is not an SD 1.x checkpoint is named', () => {
  it('SD 2.x shapes (linear proj_in, 1024-wide cross-attention)', async () => {
    const file = edit('sd2', (tensors) =>
      replace(
        `${U}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`,
        [32, 1024],
      )(replace(`${U}input_blocks.1.1.proj_in.weight`, [32, 32])(tensors)),
    );
    expect(await refusal(file)).toBe(
      `${path.basename(file)} is an SD 2.x checkpoint (linear proj_in or 1024-wide cross-attention in the UNet); hiresbot runs SD 1.x checkpoints only`,
    );
  });

  it('SD 2.x by its OpenCLIP text encoder', async () => {
    const file = edit('openclip', (tensors) =>
      tensors.map((t) => ({
        ...t,
        name: t.name.replace('cond_stage_model.transformer.text_model.', 'cond_stage_model.model.'),
      })),
    );
    expect(await refusal(file)).toContain('is an SD 2.x checkpoint (its text encoder is OpenCLIP');
  });

  it('an inpainting UNet (9 input channels)', async () => {
    const file = edit('inpaint', replace(`${U}input_blocks.0.0.weight`, [32, 9, 3, 3]));
    expect(await refusal(file)).toBe(
      `${path.basename(file)} is an inpainting checkpoint (its UNet takes 9 input channels); hiresbot runs SD 1.x checkpoints only`,
    );
  });

  it('SDXL, v-prediction, a LoRA, a VAE and a file with no UNet', async () => {
    const sdxl = edit('sdxl', (t) => [...t, zerosF16('conditioner.embedders.0.transformer.x', [1])]);
    expect(await refusal(sdxl)).toContain('is an SDXL checkpoint');
    const vpred = edit('vpred', (t) => [...t, zerosF16('v_pred', [])]);
    expect(await refusal(vpred)).toContain('is a v-prediction checkpoint');
    const spec = edit('vspec', (t) => t, { 'modelspec.prediction_type': 'v' });
    expect(await refusal(spec)).toContain('is a v-prediction checkpoint');
    const lora = edit('lora', () => [
      zerosF16('lora_unet_input_blocks_1_1_proj_in.lora_down.weight', [4, 32]),
    ]);
    expect(await refusal(lora)).toContain('is a LoRA, not a checkpoint');
    expect(await refusal(TINY_VAE)).toBe(
      'vae.safetensors is a VAE, not a checkpoint: pass it with --vae (or MODEL_VAE)',
    );
    const empty = edit('empty', () => [zerosF16('something.else', [2])]);
    expect(await refusal(empty)).toContain(
      'is not a Stable Diffusion checkpoint (it has no model.diffusion_model.* tensors)',
    );
  });

  it('a checkpoint given as the VAE', async () => {
    expect(await refusal(TINY_CHECKPOINT, TINY_CHECKPOINT)).toBe(
      'model.safetensors is a whole checkpoint, not a VAE: pass it as the checkpoint',
    );
  });
});

describe('a damaged file is refused naming the tensor', () => {
  it('a truncated file names the first tensor that runs past its end', async () => {
    const bytes = readFileSync(TINY_CHECKPOINT);
    const file = fileIn('truncated.safetensors');
    const kept = Math.floor(bytes.length / 2);
    writeFileSync(file, bytes.subarray(0, kept));
    const { header, data } = parts(TINY_CHECKPOINT);
    const available = kept - (bytes.length - data.length);
    const [first] = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])
      .filter(([, e]) => e.data_offsets[1] > available);
    const [name, entry] = first ?? [];
    expect(await refusal(file)).toBe(
      `${file}: tensor "${name}" ends at byte ${entry?.data_offsets[1]} of the tensor data but the file holds only ${available}: the file is truncated or corrupt`,
    );
  });

  it.each([
    [
      'ranges that overlap',
      (h: Header) => shift(h, 'alphas_cumprod', -8),
      /tensor "alphas_cumprod": data_offsets \[608, 4608\] overlap tensor "cond_stage_model\.transformer\.text_model\.embeddings\.position_ids"/,
    ],
    [
      'a shape the range does not hold',
      (h: Header) => {
        entry(h, 'betas').shape = [999];
      },
      /tensor "betas": shape \[999\] of F32 takes 3996 bytes but data_offsets \[8616, 12616\] hold 4000/,
    ],
    [
      'a range past the end of the file',
      (h: Header) => grow(h, 'model.diffusion_model.time_embed.2.weight'),
      /tensor "model\.diffusion_model\.time_embed\.2\.weight" ends at byte 34262694 of the tensor data but the file holds only 34262438: the file is truncated or corrupt$/,
    ],
    [
      'a gap between ranges',
      (h: Header) => shift(h, 'model.diffusion_model.time_embed.2.weight', 64),
      /tensor "model\.diffusion_model\.time_embed\.2\.weight": data_offsets \[34229734, 34262502\] leave 64 bytes unaccounted for before it$/,
    ],
    [
      'an unknown dtype',
      (h: Header) => {
        entry(h, 'betas').dtype = 'Q4';
      },
      /tensor "betas" has an unknown dtype "Q4"/,
    ],
  ])('a header with %s', async (_, lie, expected) => {
    const file = fileIn('lying.safetensors');
    const { header, data } = parts(TINY_CHECKPOINT);
    lie(header);
    writeHeaderAndData(file, header, data);
    expect(await refusal(file)).toMatch(expected);
  });

  it('bytes after the last tensor that the header does not describe', async () => {
    const file = fileIn('trailing.safetensors');
    const { header, data } = parts(TINY_CHECKPOINT);
    writeHeaderAndData(file, header, Buffer.concat([data, Buffer.alloc(5)]));
    expect(await refusal(file)).toBe(
      `${file} has 5 bytes after its last tensor that its header does not describe: the file is corrupt`,
    );
  });

  it('a header length past the end of the file, or absurdly large', async () => {
    const file = fileIn('short-header.safetensors');
    const buf = Buffer.alloc(16);
    buf.writeBigUInt64LE(1000n);
    writeFileSync(file, buf);
    expect(await refusal(file)).toBe(`${file} is truncated: its header needs 1000 bytes, the file has 8`);
    buf.writeBigUInt64LE(2n ** 40n);
    writeFileSync(file, buf);
    expect(await refusal(file)).toBe(`${file} is not a safetensors file (header length 1099511627776 bytes)`);
  });

  it('a header bigger than any real checkpoint needs, or of more tensors than any has, before it is parsed', async () => {
    // a 27 MB header of a million one-byte tensors took 861 MB of memory to parse
    const big = fileIn('big-header.safetensors');
    const length = Buffer.alloc(16);
    length.writeBigUInt64LE(16_777_217n); // 16 MiB + 1
    writeFileSync(big, length);
    expect(await refusal(big)).toBe(
      `${big}: its header is 16777217 bytes, more than the 16777216 any real checkpoint needs (an SD 1.5 header is about 100 KB): not read`,
    );
    const tiny = (n: number) =>
      Object.fromEntries(
        Array.from({ length: n }, (_, i) => [`t${i}`, { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] }]),
      );
    const many = fileIn('many-tensors.safetensors');
    writeHeaderAndData(many, tiny(20_001), new Uint8Array(20_001));
    expect(await refusal(many)).toBe(
      `${many}: its header lists 20001 tensors, more than the 20000 any real checkpoint has (SD 1.5 has about 1,200): not read`,
    );
    // a few tensors, but 16 MiB of tiny metadata entries (650 MB to parse), quoted commas aside
    const tags = { ss_tag_frequency: ',,,'.repeat(1_000_000) };
    const metadata = Object.fromEntries(Array.from({ length: 200_001 }, (_, i) => [`m${i}`, '']));
    const quoted = fileIn('quoted-commas.safetensors');
    writeHeaderAndData(quoted, { __metadata__: tags, ...tiny(1) }, new Uint8Array(1));
    SafetensorsFile.open(quoted).close();
    const meta = fileIn('many-metadata.safetensors');
    writeHeaderAndData(meta, { __metadata__: metadata, ...tiny(1) }, new Uint8Array(1));
    expect(await refusal(meta)).toBe(
      `${meta}: its header holds 200005 values, more than the 200000 any real checkpoint needs (SD 1.5 about 6,000): not read`,
    );
    // as many as the bound: read (then refused as no Stable Diffusion checkpoint)
    const enough = fileIn('enough-tensors.safetensors');
    writeHeaderAndData(enough, tiny(20_000), new Uint8Array(20_000));
    const opened = SafetensorsFile.open(enough);
    expect(opened.tensors.size).toBe(20_000);
    opened.close();
  });

  it("a CLIP vocabulary other than the tokenizer's 49408 tokens, fewer than 77 positions, a UNet not putting out 4 channels", async () => {
    const C = 'cond_stage_model.transformer.text_model.';
    const vocab = edit('vocab', replace(`${C}embeddings.token_embedding.weight`, [100, 64]));
    expect(await refusal(vocab)).toBe(
      `${vocab}: the CLIP text encoder has a 100-token vocabulary; SD 1.x's tokenizer needs 49408`,
    );
    const positions = edit('positions', replace(`${C}embeddings.position_embedding.weight`, [10, 64]));
    expect(await refusal(positions)).toBe(
      `${positions}: the CLIP text encoder has 10 positions; SD 1.x's prompts need 77`,
    );
    const out = edit('out-channels', (tensors) =>
      replace(`${U}out.2.bias`, [8])(replace(`${U}out.2.weight`, [8, 32, 3, 3])(tensors)),
    );
    expect(await refusal(out)).toBe(
      `${out}: the UNet puts out 8 channels; SD 1.x's predicts the 4 latent channels it takes`,
    );
  });

  it('a tensor of the wrong shape, or a missing one, found while the graphs are built', async () => {
    const key = `${U}output_blocks.2.0.in_layers.2.weight`;
    const wrong = edit('wrong-shape', replace(key, [128, 64, 3, 3]));
    expect(await refusal(wrong)).toBe(
      `${wrong}: tensor "${key}" has shape [128, 64, 3, 3], expected [128, 256, 3, 3] for the UNet`,
    );
    const gone = `${U}middle_block.1.transformer_blocks.0.attn2.to_v.weight`;
    const missing = edit('missing', (tensors) => tensors.filter((t) => t.name !== gone));
    expect(await refusal(missing)).toBe(`${missing} has no tensor "${gone}", which the UNet needs`);
  });
});

describe('pickled checkpoints are never unpickled', () => {
  const message =
    'is a pickled PyTorch checkpoint (.ckpt/.pt): loading one can run any code it carries, so hiresbot does not read it';

  it('by extension, without opening the file', async () => {
    const file = fileIn('model.ckpt');
    copyFileSync(TINY_CHECKPOINT, file);
    expect(await refusal(file)).toContain(`${file} ${message}`);
  });

  it('by content, whatever the name: torch zip archives and bare pickles', async () => {
    const zip = fileIn('zip.safetensors');
    writeFileSync(zip, Buffer.from('PK\x03\x04 archive/data.pkl', 'latin1'));
    expect(await refusal(zip)).toContain(message);
    const pickle = fileIn('pickle.safetensors');
    writeFileSync(pickle, Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x05, 0, 0]));
    expect(await refusal(pickle)).toContain(message);
  });
});

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

function parts(file: string): { header: Header; data: Uint8Array } {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  return {
    header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Header,
    data: bytes.subarray(8 + n),
  };
}

function entry(h: Header, key: string): Header[string] {
  const e = h[key];
  if (!e) throw new Error(`no ${key}`);
  return e;
}

function shift(h: Header, key: string, by: number): void {
  const e = entry(h, key);
  e.data_offsets = [e.data_offsets[0] + by, e.data_offsets[1] + by];
}

/** One more row for the tensor [128, 128] → [129, 128], its range growing to match. */
function grow(h: Header, key: string): void {
  const e = entry(h, key);
  e.shape = [129, 128];
  e.data_offsets = [e.data_offsets[0], e.data_offsets[1] + 256];
}
