/** Element types of tensor files (safetensors' names), decoded to the engine's float32. PyTorch
 * state_dicts are often saved in half or bfloat16 precision, and hold a few integer counters. */

/** Bytes per value, and a reader of one little-endian value. */
const DTYPES: Record<string, [number, (view: DataView, at: number) => number]> = {
  F32: [4, (v, at) => v.getFloat32(at, true)],
  F64: [8, (v, at) => v.getFloat64(at, true)],
  F16: [2, (v, at) => halfToFloat(v.getUint16(at, true))],
  BF16: [2, (v, at) => new Float32Array(new Uint32Array([v.getUint16(at, true) << 16]).buffer)[0]!],
  I64: [8, (v, at) => Number(v.getBigInt64(at, true))],
  I32: [4, (v, at) => v.getInt32(at, true)],
  I16: [2, (v, at) => v.getInt16(at, true)],
  I8: [1, (v, at) => v.getInt8(at)],
  U8: [1, (v, at) => v.getUint8(at)],
  BOOL: [1, (v, at) => v.getUint8(at)],
};

export const dtypeNames = Object.keys(DTYPES);

export function isDtype(name: string): boolean {
  return Object.hasOwn(DTYPES, name);
}

export function bytesPerValue(dtype: string): number {
  return DTYPES[dtype]![0];
}

/** `count` values of `dtype` starting at `bytes[at]` as float32: float32 values at an aligned address are a view of `bytes`
 * (no copy: the torchvision net's 233 MB took 183 ms to copy), others a fresh array. */
export function decodeValues(bytes: Uint8Array, dtype: string, count: number, at = 0): Float32Array {
  const [width, read] = DTYPES[dtype]!;
  if (at < 0 || at + count * width > bytes.length) throw new Error(`internal: ${count} ${dtype} values at byte ${at} pass ${bytes.length}`);
  const start = bytes.byteOffset + at;
  if (dtype === 'F32' && start % 4 === 0) return new Float32Array(bytes.buffer, start, count);
  const raw = new Uint8Array(bytes.subarray(at, at + count * width)); // a copy (a Buffer's slice is not one): aligned
  if (dtype === 'F32') return new Float32Array(raw.buffer);
  const view = new DataView(raw.buffer);
  return Float32Array.from({ length: count }, (_, i) => read(view, i * width));
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1,
    exponent = (h >> 10) & 0x1f,
    fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
