/**
 * An ONNX external-data file written as the graph is built: each weight is appended the moment
 * it is read from the checkpoint and then dropped, so memory holds one tensor, not the model.
 * Tensors of 1 MiB or more start on a 4 KiB boundary, as onnx's own writer lays them out
 * (`external_data_helper.py`, align_offset), so onnxruntime can map them instead of copying.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { ExternalDataSink } from '../diffusion/model/onnx-graph.ts';

const ALIGN_FROM_BYTES = 1 << 20;
const ALIGNMENT = 4096;

export class ExternalDataFile implements ExternalDataSink {
  readonly location: string;
  private fd: number | undefined;
  private offset = 0;
  /** Bytes written, for progress and the closing note. */
  bytes = 0;

  constructor(file: string) {
    this.location = path.basename(file);
    this.fd = openSync(file, 'w');
  }

  append(bytes: Uint8Array): number {
    if (this.fd === undefined) throw new Error(`${this.location} is closed`);
    if (bytes.length >= ALIGN_FROM_BYTES && this.offset % ALIGNMENT !== 0) {
      const pad = ALIGNMENT - (this.offset % ALIGNMENT);
      this.write(new Uint8Array(pad));
    }
    const at = this.offset;
    this.write(bytes);
    return at;
  }

  private write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd as number, bytes, done, bytes.length - done);
    this.offset += bytes.length;
    this.bytes = this.offset;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
