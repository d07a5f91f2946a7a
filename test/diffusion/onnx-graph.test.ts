// Our ONNX writer (src/diffusion/model/onnx-graph.ts, own protobuf encoder) against the reference:
// the same graph encoded by protobufjs through onnx-proto must give the same bytes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/diffusion/model/onnx-graph.ts';
import { ProtoWriter } from '../../src/diffusion/model/protobuf-writer.ts';
import { GraphBuilder as ReferenceBuilder } from './onnx-proto-reference.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-onnx-graph-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Builder = Pick<GraphBuilder, 'input' | 'output' | 'op' | 'constFloat' | 'constInt64' | 'cast'>;

/** Every feature the writer has: each dim kind, each attribute kind, inline and external data. */
function build(g: Builder): void {
  const x = g.input('x', 'float16', ['batch', 4, 'height', 'width']);
  g.input('t', 'float32', []);
  g.input('ids', 'int64', [1, 77]);
  const weights = g.constFloat(
    Array.from({ length: 100 }, (_, i) => i / 7 - 3),
    [10, 10],
    'weights',
  );
  const small = g.constFloat([0.5, -1.25], [2]);
  const ints = g.constInt64([-1, 0, 2 ** 40]);
  const c = g.cast(x, 'float32');
  g.op('ReduceMean', [c], { axes: [1, -1], keepdims: 0 });
  g.op('Resize', [c, '', g.constFloat([1, 1, 8, 8], [4])], { mode: 'nearest' });
  g.op('LeakyRelu', [c], { alpha: { float: 0.2 } });
  g.op('MatMul', [weights, small]);
  g.op('Reshape', [c, ints]);
  const value = {
    name: 'v',
    dims: [2],
    dataType: 1,
    rawData: new Uint8Array(Float32Array.from([1, 2]).buffer),
  };
  g.op('Constant', [], { value: { tensor: value } }, 'out');
  g.output('out', 'float32', ['batch', 4]);
}

describe('ONNX writer', () => {
  it('encodes a graph byte for byte as protobufjs does, external data included', () => {
    const ours = new GraphBuilder('model.onnx_data');
    const reference = new ReferenceBuilder('model.onnx_data');
    build(ours);
    build(reference as unknown as Builder);
    ours.write(work, 'g', 17);
    const bytes = readFileSync(path.join(work, 'model.onnx'));
    expect(Buffer.from(reference.encode('g', 17)).equals(bytes)).toBe(true);
    expect(readFileSync(path.join(work, 'model.onnx_data')).equals(reference.externalBytes())).toBe(true);
    expect(bytes.length).toBeGreaterThan(300);
  });
});

describe('ProtoWriter', () => {
  it.each([
    [0, [0x08, 0x00]],
    [150, [0x08, 0x96, 0x01]],
    [2 ** 40, [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]],
    [-1, [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ])('varint field 1 = %d → %j (the protobuf encoding guide’s examples)', (value, bytes) => {
    expect(Array.from(new ProtoWriter().int(1, value).finish())).toEqual(bytes);
  });

  it('writes strings and embedded messages length-delimited, floats little-endian', () => {
    const w = new ProtoWriter().string(2, 'testing').message(3, new ProtoWriter().int(1, 150)).float(4, 1);
    expect(Array.from(w.finish())).toEqual([
      0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67, 0x1a, 0x03, 0x08, 0x96, 0x01, 0x25, 0x00, 0x00,
      0x80, 0x3f,
    ]);
  });
});
