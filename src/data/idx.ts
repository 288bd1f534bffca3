/**
 * IDX files (the MNIST / Fashion-MNIST format), gzipped or not: a big-endian header — two zero
 * bytes, a type byte (0x08: unsigned bytes), the number of dimensions — then each dimension as a
 * uint32, then the values.
 */
import { readFileBytes } from '../io/files.js';
import { gunzipSync } from 'fflate';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      fail(`corrupt gzip data (${(error as Error).message})`);
    }
  }
  if (bytes.length < 4) fail(`truncated: ${bytes.length} bytes, an IDX header needs at least 4`);
  if (bytes[0] !== 0 || bytes[1] !== 0) fail('not an IDX file (it must start with two zero bytes)');
  if (bytes[2] !== 0x08) fail(`IDX value type 0x${bytes[2]!.toString(16)} is not supported (only 0x08, unsigned bytes)`);
  const rank = bytes[3]!;
  if (rank < 1 || rank > 4) fail(`an IDX file with ${rank} dimensions is not a dataset of images or labels`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) fail(`truncated: the header needs ${headerBytes} bytes, the file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - headerBytes !== count) {
    fail(
      `${bytes.length - headerBytes < count ? 'truncated' : 'trailing data'}: ` +
        `the header says ${dims.join('×')} = ${count} values, the file holds ${bytes.length - headerBytes}`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

export function readIdx(path: string): IdxArray {
  return parseIdx(readFileBytes(path, 'IDX file'), path);
}
