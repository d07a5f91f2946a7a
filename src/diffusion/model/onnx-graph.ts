/**
 * Writing ONNX models (onnx/onnx.proto, IR version 8): a graph of nodes, constants and typed I/O,
 * large constants in an external-data file beside `model.onnx` as the exporters lay them out.
 * Encoded with our own protobuf writer, so that writing a model needs no protobuf library. The
 * external data is kept in memory by default; a checkpoint import passes a sink that streams it
 * to disk instead, so a 2 GB UNet never has to fit in memory at once.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ProtoWriter } from './protobuf-writer.ts';

export type ElemType = 'float32' | 'float16' | 'int32' | 'int64';

/** `TensorProto.DataType`. */
export const DATA_TYPE: Record<ElemType, number> = { float32: 1, float16: 10, int32: 6, int64: 7 };

export interface TensorProto {
  name: string;
  dims: readonly number[];
  dataType: number;
  /** Inline bytes, little-endian; absent when the tensor lives in the external-data file. */
  rawData?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export type Attr = number | readonly number[] | string | { float: number } | { tensor: TensorProto };

interface NodeProto {
  opType: string;
  /** '' = the ONNX domain; 'com.microsoft' = onnxruntime's contrib ops. */
  domain: string;
  inputs: readonly string[];
  output: string;
  name: string;
  attributes: readonly [string, Attr][];
}

interface ValueInfo {
  name: string;
  type: ElemType;
  /** A number is a fixed size, a string a named free dimension; [] is a scalar. */
  dims: readonly (number | string)[];
}

/** `AttributeProto.AttributeType`. */
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, INTS: 7 } as const;

function encodeTensor(t: TensorProto): ProtoWriter {
  const w = new ProtoWriter().packedInts(1, t.dims).int(2, t.dataType).string(8, t.name);
  if (t.rawData) w.bytes(9, t.rawData);
  if (t.external) {
    const { location, offset, length } = t.external;
    for (const [key, value] of [
      ['location', location],
      ['offset', String(offset)],
      ['length', String(length)],
    ] as const) {
      w.message(13, new ProtoWriter().string(1, key).string(2, value));
    }
    w.int(14, 1); // DataLocation.EXTERNAL
  }
  return w;
}

function encodeAttribute(name: string, v: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof v === 'number') return w.int(3, v).int(20, ATTR.INT);
  if (typeof v === 'string') return w.string(4, v).int(20, ATTR.STRING);
  if (Array.isArray(v)) return w.packedInts(8, v as readonly number[]).int(20, ATTR.INTS);
  if ('float' in v) return w.float(2, v.float).int(20, ATTR.FLOAT);
  return w.message(5, encodeTensor((v as { tensor: TensorProto }).tensor)).int(20, ATTR.TENSOR);
}

function encodeNode(n: NodeProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of n.inputs) w.string(1, input);
  w.string(2, n.output).string(3, n.name).string(4, n.opType);
  for (const [name, v] of n.attributes) w.message(5, encodeAttribute(name, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v: ValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  }
  const tensorType = new ProtoWriter().int(1, DATA_TYPE[v.type]).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

/** Where large constants go: `append` stores the bytes and says at which offset of `location`. */
export interface ExternalDataSink {
  readonly location: string;
  append(bytes: Uint8Array): number;
}

/** The default sink: every byte kept until `GraphBuilder.write` writes the file. */
class MemorySink implements ExternalDataSink {
  readonly chunks: Uint8Array[] = [];
  private offset = 0;

  constructor(readonly location: string) {}

  append(bytes: Uint8Array): number {
    const at = this.offset;
    this.chunks.push(bytes);
    this.offset += bytes.length;
    return at;
  }
}

/** Constants of at least this many bytes go to the external-data file when the graph has one. */
const EXTERNAL_MIN_BYTES = 256;

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  /** Where tensors stored outside the .onnx file go. */
  private readonly external: ExternalDataSink | undefined;
  private counter = 0;

  /** `external`: the external-data file name (kept in memory until `write`), or a sink of one's own. */
  constructor(external?: string | ExternalDataSink) {
    this.external = typeof external === 'string' ? new MemorySink(external) : external;
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, type: ElemType, dims: (number | string)[]): string {
    this.inputs.push({ name, type, dims });
    return name;
  }

  output(name: string, type: ElemType, dims: (number | string)[]): void {
    this.outputs.push({ name, type, dims });
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    return this.opIn('', opType, inputs, attrs, outName);
  }

  /** A node of another operator domain, e.g. onnxruntime's contrib ops ('com.microsoft', version 1). */
  opIn(
    domain: string,
    opType: string,
    inputs: string[],
    attrs: Record<string, Attr> = {},
    outName?: string,
  ): string {
    const output = outName ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      domain,
      inputs,
      output,
      name: this.fresh(`n_${opType}`),
      attributes: Object.entries(attrs),
    });
    return output;
  }

  /**
   * A constant of any element type from its little-endian bytes; large ones go to the
   * external-data file when the graph has one.
   */
  constTensor(type: ElemType, dims: readonly number[], bytes: Uint8Array, name?: string): string {
    const n = name ?? this.fresh('const');
    const dataType = DATA_TYPE[type];
    if (this.external && bytes.length >= EXTERNAL_MIN_BYTES) {
      const offset = this.external.append(bytes);
      const location = this.external.location;
      this.initializers.push({
        name: n,
        dims,
        dataType,
        external: { location, offset, length: bytes.length },
      });
    } else {
      this.initializers.push({ name: n, dims, dataType, rawData: bytes });
    }
    return n;
  }

  /** A float32 constant; large ones go to the external-data file when the graph has one. */
  constFloat(values: number[] | Float32Array, dims: number[], name?: string): string {
    const data = Float32Array.from(values);
    return this.constTensor(
      'float32',
      dims,
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      name,
    );
  }

  constInt64(values: number[], dims: number[] = [values.length]): string {
    const n = this.fresh('const_i64');
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name: n,
      dims,
      dataType: DATA_TYPE.int64,
      rawData: new Uint8Array(data.buffer),
    });
    return n;
  }

  cast(x: string, to: ElemType): string {
    return this.op('Cast', [x], { to: DATA_TYPE[to] });
  }

  /** The ModelProto bytes of the graph so far. */
  encode(graphName: string, opset = 17, producer = 'hiresbot'): Uint8Array {
    const graph = new ProtoWriter();
    for (const n of this.nodes) graph.message(1, encodeNode(n));
    graph.string(2, graphName);
    for (const t of this.initializers) graph.message(5, encodeTensor(t));
    for (const v of this.inputs) graph.message(11, encodeValueInfo(v));
    for (const v of this.outputs) graph.message(12, encodeValueInfo(v));
    const model = new ProtoWriter()
      .int(1, 8) // IR version 8: onnxruntime ≥ 1.14 reads it
      .string(2, producer)
      .message(7, graph)
      .message(8, new ProtoWriter().string(1, '').int(2, opset));
    for (const domain of new Set(this.nodes.map((n) => n.domain).filter((d) => d !== ''))) {
      model.message(8, new ProtoWriter().string(1, domain).int(2, 1));
    }
    return model.finish();
  }

  /** Writes `<dir>/model.onnx` (and the in-memory external-data file beside it; a sink writes its own). */
  write(dir: string, graphName: string, opset = 17): void {
    writeFileSync(path.join(dir, 'model.onnx'), this.encode(graphName, opset));
    if (this.external instanceof MemorySink) {
      writeFileSync(path.join(dir, this.external.location), Buffer.concat(this.external.chunks));
    }
  }
}
