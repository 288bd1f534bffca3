/** Reading ONNX protobufs with protobufjs and ONNX's own schema (onnx.proto, shipped beside this). */
import protobuf from 'protobufjs';
import { formatShape, sizeOf } from '../tensor.js';
import { onnxSchemaText } from './schema.js';

// Plain-object views of the messages this project reads (protobufjs `toObject` with longs as numbers).
export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
  t?: TensorProto;
}
export interface NodeProto {
  name?: string;
  opType: string;
  domain?: string;
  input?: string[];
  output?: string[];
  attribute?: AttributeProto[];
}
export interface TensorProto {
  name?: string;
  dims?: number[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
}
export interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: number; dimParam?: string }[] } } };
}
export interface GraphProto {
  name?: string;
  node?: NodeProto[];
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
}
export interface ModelProto {
  irVersion?: number;
  producerName?: string;
  opsetImport?: { domain?: string; version?: number }[];
  metadataProps?: { key?: string; value?: string }[];
  graph?: GraphProto;
}

let schema: protobuf.Root | null = null;
function onnxType(name: string): protobuf.Type {
  schema ??= protobuf.parse(onnxSchemaText(), { keepCase: false }).root;
  return schema.lookupType(`onnx.${name}`);
}

function decode<T>(typeName: string, bytes: Uint8Array, source: string): T {
  const type = onnxType(typeName);
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (error) {
    throw new Error(`${source}: not a valid ONNX ${typeName} (${(error as Error).message})`, { cause: error });
  }
  return type.toObject(message, { longs: Number, bytes: Uint8Array as never, defaults: false, arrays: true }) as T;
}

export function decodeModel(bytes: Uint8Array, source = 'ONNX model'): ModelProto {
  return decode<ModelProto>('ModelProto', bytes, source);
}

export function encodeModel(model: ModelProto): Uint8Array {
  const type = onnxType('ModelProto');
  return type.encode(type.fromObject(model)).finish();
}

export function decodeTensor(bytes: Uint8Array, source = 'ONNX tensor'): TensorProto {
  return decode<TensorProto>('TensorProto', bytes, source);
}

/** TensorProto.DataType values the engine reads. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

const RAW_READERS: Record<number, [number, (view: DataView, at: number) => number]> = {
  [DataType.FLOAT]: [4, (v, at) => v.getFloat32(at, true)],
  [DataType.DOUBLE]: [8, (v, at) => v.getFloat64(at, true)],
  [DataType.UINT8]: [1, (v, at) => v.getUint8(at)],
  [DataType.INT8]: [1, (v, at) => v.getInt8(at)],
  [DataType.BOOL]: [1, (v, at) => v.getUint8(at)],
  [DataType.INT32]: [4, (v, at) => v.getInt32(at, true)],
  [DataType.INT64]: [8, (v, at) => Number(v.getBigInt64(at, true))],
};

/** A tensor's values as float32 (integers and booleans converted), with its shape. */
export function tensorValues(t: TensorProto, source: string): { shape: number[]; data: Float32Array } {
  const shape = (t.dims ?? []).map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new Error(`${source}: tensor '${t.name ?? ''}' has the shape ${formatShape(shape)}; dimensions must be non-negative integers`);
  const count = sizeOf(shape);
  if (!Number.isSafeInteger(count)) throw new Error(`${source}: tensor '${t.name ?? ''}' ${formatShape(shape)} is too large`);
  const type = t.dataType ?? 0;
  let data: Float32Array;
  if (t.rawData && t.rawData.length > 0) {
    const reader = RAW_READERS[type];
    if (!reader) throw new Error(`${source}: tensor '${t.name ?? ''}' has ONNX data type ${type}, which the engine does not read`);
    const [width, read] = reader;
    if (t.rawData.length !== count * width)
      throw new Error(`${source}: tensor '${t.name ?? ''}' holds ${t.rawData.length} bytes, its shape needs ${count * width}`);
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    data = Float32Array.from({ length: count }, (_, i) => read(view, i * width));
  } else {
    data = Float32Array.from(t.floatData ?? t.doubleData ?? t.int32Data ?? t.int64Data ?? []);
    if (data.length !== count) throw new Error(`${source}: tensor '${t.name ?? ''}' holds ${data.length} values, its shape needs ${count}`);
  }
  return { shape, data };
}
