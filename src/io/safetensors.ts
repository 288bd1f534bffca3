/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON
 * header mapping each tensor name to { dtype, shape, data_offsets } plus an optional
 * "__metadata__" map of strings, then the raw little-endian tensor bytes.
 * Only F32 (and F64 for reading) are supported: the engine's tensors are float32.
 */
import { formatShape, sizeOf } from '../tensor.js';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Record<string, NamedTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<string, number> = { F32: 4, F64: 8 };

export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  const fail = (what: string): never => { throw new Error(`${source}: ${what}`); };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, no header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) fail(`truncated: header says ${headerLength} bytes, file has ${bytes.length - 8} after the length`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch {
    return fail('header is not valid JSON (not a safetensors file?)');
  }
  const body = bytes.subarray(8 + headerLength);
  const tensors: Record<string, NamedTensor> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = BYTES[dtype] ?? fail(`tensor '${name}' has dtype ${dtype}; only F32 and F64 are supported`);
    const [begin, end] = offsets;
    if (end > body.length) fail(`truncated: tensor '${name}' ends at byte ${end}, data has ${body.length}`);
    if (end - begin !== sizeOf(shape) * width) fail(`tensor '${name}' ${formatShape(shape)} needs ${sizeOf(shape) * width} bytes, has ${end - begin}`);
    const raw = new Uint8Array(end - begin); // a copy: aligned, and independent of a Node Buffer's pool
    raw.set(body.subarray(begin, end));
    const data = dtype === 'F32' ? new Float32Array(raw.buffer) : Float32Array.from(new Float64Array(raw.buffer));
    tensors[name] = { shape, data };
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

export function serializeSafetensors(tensors: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.data.length !== sizeOf(t.shape)) throw new Error(`tensor '${name}': shape ${formatShape(t.shape)} does not match ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20); // pad with spaces: data stays 8-byte aligned
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of Object.values(tensors)) {
    const f32 = Float32Array.from(t.data);
    out.set(new Uint8Array(f32.buffer), at);
    at += f32.byteLength;
  }
  return out;
}
