// The reference for src/diffusion/model/onnx-graph.ts: the same builder over onnx-proto (protobufjs
// code generated from onnx.proto), which the ONNX writer's bytes are compared with.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
export const DT = onnx.TensorProto.DataType;
export type ElemType = 'float32' | 'float16' | 'int32' | 'int64';

export const ELEM: Record<ElemType, number> = {
  float32: DT.FLOAT,
  float16: DT.FLOAT16,
  int32: DT.INT32,
  int64: DT.INT64,
};

type Attr = number | number[] | string | { tensor: onnxProto.onnx.ITensorProto } | { float: number };

export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  /** Bytes of tensors stored outside the .onnx file, with the file name they go to. */
  private external: { file: string; chunks: Buffer[]; offset: number } | undefined;
  private counter = 0;

  constructor(externalFile?: string) {
    if (externalFile) this.external = { file: externalFile, chunks: [], offset: 0 };
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, type: ElemType, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    const out = outName ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      input: inputs,
      output: [out],
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    });
    return out;
  }

  /** A float32 constant; large ones go to the external-data file when the graph has one. */
  constFloat(values: number[] | Float32Array, dims: number[], name?: string): string {
    const n = name ?? this.fresh('const');
    const data = Float32Array.from(values);
    const tensor: onnxProto.onnx.ITensorProto = { name: n, dims, dataType: DT.FLOAT };
    if (this.external && data.length >= 64) {
      const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        { key: 'location', value: this.external.file },
        { key: 'offset', value: String(this.external.offset) },
        { key: 'length', value: String(bytes.length) },
      ];
      this.external.chunks.push(bytes);
      this.external.offset += bytes.length;
    } else {
      tensor.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    this.initializers.push(tensor);
    return n;
  }

  constInt64(values: number[], dims: number[] = [values.length]): string {
    const n = this.fresh('const_i64');
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name: n,
      dims,
      dataType: DT.INT64,
      rawData: new Uint8Array(data.buffer),
    });
    return n;
  }

  cast(x: string, to: ElemType): string {
    return this.op('Cast', [x], { to: ELEM[to] });
  }

  /** The ModelProto bytes, encoded by protobufjs. */
  encode(graphName: string, opset = 17, producer = 'hiresbot'): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: producer,
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /** The external-data file's bytes. */
  externalBytes(): Buffer {
    return Buffer.concat(this.external?.chunks ?? []);
  }
}

function valueInfo(name: string, type: ElemType, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: Attr): onnxProto.onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: A.INT, i: v };
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ('float' in v) return { name, type: A.FLOAT, f: v.float };
  return { name, type: A.TENSOR, t: v.tensor };
}
