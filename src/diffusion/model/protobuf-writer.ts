/**
 * The protobuf wire format, writing only (https://protobuf.dev/programming-guides/encoding/): enough
 * to write ONNX models without a protobuf library at run time. Fields are appended in the order
 * they are written; callers write them in field-number order, as protobufjs and protoc do.
 */

const VARINT = 0;
const FIXED32 = 5;
const LENGTH_DELIMITED = 2;

export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  private static readonly encoder = new TextEncoder();

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  /** A varint; negative values as 64-bit two's complement (ten bytes), as int32/int64 fields want. */
  private rawVarint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wireType: number): void {
    this.rawVarint((field << 3) | wireType);
  }

  /** int32, int64 or enum field. */
  int(field: number, value: number | bigint): this {
    this.tag(field, VARINT);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, LENGTH_DELIMITED);
    this.rawVarint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, ProtoWriter.encoder.encode(value));
  }

  /** An embedded message. */
  message(field: number, message: ProtoWriter): this {
    return this.bytes(field, message.finish());
  }

  /** A repeated int32/int64 field, packed; nothing at all when empty. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    return this.message(field, inner);
  }

  /** A repeated float field, packed; nothing at all when empty. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const bytes = new Uint8Array(4 * values.length);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => {
      view.setFloat32(4 * i, v, true);
    });
    return this.bytes(field, bytes);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
