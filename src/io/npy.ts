/**
 * NumPy's .npy format (version 1.0–3.0): the magic "\x93NUMPY", a version, a header length, a
 * Python dict literal {'descr', 'fortran_order', 'shape'}, then the raw values. Float32 and
 * float64 little-endian, C order, are read (float64 converted); float32 is written.
 */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

export function parseNpy(bytes: Uint8Array, source: string): { shape: number[]; data: Float32Array } {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) fail('not a .npy file');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start + headerLength) fail('truncated header');
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) fail(`unreadable header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') fail('Fortran-order arrays are not supported; save with C order');
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const width = descr === '<f4' ? 4 : descr === '<f8' ? 8 : fail(`dtype ${descr} is not supported (use float32 '<f4' or float64 '<f8')`);
  const body = bytes.subarray(start + headerLength);
  if (body.length !== count * width) fail(`holds ${body.length} bytes of data, its shape (${shape.join(', ')}) needs ${count * width}`);
  const copy = new Uint8Array(body.length); // a copy: aligned, and not a view into a Node Buffer's pool
  copy.set(body);
  return { shape, data: width === 4 ? new Float32Array(copy.buffer) : Float32Array.from(new Float64Array(copy.buffer)) };
}

export function serializeNpy(shape: readonly number[], data: ArrayLike<number>): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // data 64-byte aligned, as NumPy writes
  const text = new TextEncoder().encode(header);
  const values = Float32Array.from(data);
  const out = new Uint8Array(10 + text.length + values.byteLength);
  out.set(MAGIC);
  out.set([1, 0], 6);
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(text, 10);
  out.set(new Uint8Array(values.buffer), 10 + text.length);
  return out;
}
