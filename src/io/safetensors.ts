/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON
 * header mapping each tensor name to { dtype, shape, data_offsets } plus an optional
 * "__metadata__" map of strings, then the raw little-endian tensor bytes.
 * The engine's tensors are float32: F32 is written; floats (F32, F64, F16, BF16) and integers are read.
 */
import { formatShape, sizeOf } from '../tensor.js';
import { bytesPerValue, decodeValues, dtypeNames, isDtype } from './dtypes.js';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Record<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB: a guard against absurd lengths. */
const MAX_HEADER = 100_000_000;

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and checks a whole file before returning anything: a JSON object header, each entry a
 * known dtype, a shape of non-negative integers and `data_offsets` [begin, end] whose length
 * matches the shape, the entries tiling the data section exactly (in range, no overlaps, no holes:
 * the format's own rule), and metadata a map of strings.
 */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  const fail = failing(source);
  const headerEnd = 8 + headerLength(bytes, bytes.length, fail);
  const header = parseHeader(bytes.subarray(8, headerEnd), fail);
  const body = bytes.subarray(headerEnd);
  const entries = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, entry]) => checkEntry(name, entry, fail));
  checkTiling(entries, body.length, fail);
  const tensors: Record<string, NamedTensor> = {};
  for (const { name, dtype, shape, begin } of entries) tensors[name] = { shape, data: decodeValues(body, dtype, sizeOf(shape), begin) };
  return { tensors, metadata: checkMetadata(header.__metadata__, fail) };
}

/** The header's length from a file's first 8 bytes, checked against the file's `size`. */
function headerLength(first: Uint8Array, size: number, fail: (what: string) => never): number {
  if (first.length < 8 || size < 8) fail(`truncated: ${size} bytes, no header`);
  const length = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(Math.min(MAX_HEADER, size - 8))) {
    fail(`the header length ${length} is beyond the file's ${size - 8} bytes (truncated, or not a safetensors file)`);
  }
  return Number(length);
}

function parseHeader(text: Uint8Array, fail: (what: string) => never): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch {
    return fail('header is not valid JSON (not a safetensors file?)');
  }
  if (!isObject(header)) return fail('header is not a JSON object');
  return header;
}

/** For reading a file's metadata alone: the header's byte length from its first 8 bytes (checked
 * against the file's `size`), then the metadata of those header bytes. */
export function safetensorsHeaderLength(first: Uint8Array, size: number, source: string): number {
  return headerLength(first, size, failing(source));
}

export function safetensorsMetadata(header: Uint8Array, source: string): Record<string, string> {
  return checkMetadata(parseHeader(header, failing(source)).__metadata__, failing(source));
}

function failing(source: string) {
  return (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function checkEntry(name: string, entry: unknown, fail: (what: string) => never): Entry {
  if (!isObject(entry)) fail(`tensor '${name}': its header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`tensor '${name}': no dtype`);
  if (!isDtype(dtype as string)) fail(`tensor '${name}' has dtype ${String(dtype)}; only ${dtypeNames.join(', ')} are read`);
  if (!Array.isArray(shape) || !shape.every(isIndex))
    fail(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
    fail(`tensor '${name}': data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`);
  }
  const [begin, end] = offsets as [number, number];
  const needed = sizeOf(shape as number[]) * bytesPerValue(dtype as string);
  if (end - begin !== needed)
    fail(`tensor '${name}' ${formatShape(shape as number[])} ${String(dtype)} needs ${needed} bytes, has ${end - begin}`);
  return { name, dtype: dtype as string, shape: shape as number[], begin, end };
}

function checkTiling(entries: Entry[], bodyLength: number, fail: (what: string) => never): void {
  let at = 0;
  for (const { name, begin, end } of [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)) {
    if (end > bodyLength) fail(`truncated: tensor '${name}' ends at byte ${end}, data has ${bodyLength}`);
    if (begin < at) fail(`tensor '${name}' (bytes ${begin}–${end}) overlaps another tensor`);
    if (begin > at) fail(`bytes ${at}–${begin} of the data belong to no tensor`);
    at = end;
  }
  if (at !== bodyLength) fail(`trailing data: ${bodyLength - at} bytes after the last tensor`);
}

function checkMetadata(metadata: unknown, fail: (what: string) => never): Record<string, string> {
  if (metadata === undefined) return {};
  if (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) fail('__metadata__ is not a map of strings');
  return metadata as Record<string, string>;
}

export function serializeSafetensors(
  tensors: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.data.length !== sizeOf(t.shape))
      throw new Error(`tensor '${name}': shape ${formatShape(t.shape)} does not match ${t.data.length} values`);
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
