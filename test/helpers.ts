import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FloatArray, type NetSpec, Philox } from '../src/index.js';

export function randomNormal(length: number, rng: Philox, scale = 1): Float64Array {
  return Float64Array.from({ length }, () => rng.nextNormal() * scale);
}

/** Largest |a − b| / (atol + rtol·|b|); ≤ 1 means every element is within tolerance. Identical
 * infinities and NaN against NaN match; any other NaN is the worst error. */
export function worstError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): { ratio: number; index: number } {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ expected ${expected.length}`);
  let ratio = 0,
    index = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!,
      b = expected[i]!;
    const diff = a === b || (Number.isNaN(a) && Number.isNaN(b)) ? 0 : Math.abs(a - b); // equal infinities and NaNs match
    const r = diff === 0 ? 0 : diff / (atol + rtol * Math.abs(expected[i]!));
    // A NaN against a number is the worst error; once found, no later ratio may replace it.
    if (Number.isNaN(r)) return { ratio: Infinity, index: i };
    if (r > ratio) {
      ratio = r;
      index = i;
    }
  }
  return { ratio, index };
}

export function assertClose(
  actual: FloatArray | ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
): void {
  const { ratio, index } = worstError(actual, expected, atol, rtol);
  if (!(ratio <= 1)) {
    throw new Error(
      `${what}: element ${index} is ${actual[index]}, expected ${expected[index]} (atol ${atol}, rtol ${rtol}; ${ratio.toFixed(2)}× the tolerance)`,
    );
  }
}

/** An IDX file (the MNIST format) of unsigned bytes. */
export function idx(dims: number[], values: ArrayLike<number>): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => new DataView(header.buffer).setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + values.length);
  out.set(header);
  out.set(values, header.length);
  return out;
}

/** A folder of IDX files (train and t10k) of 8×8 images whose class (of up to 4) is the bright
 * column pair, learnable in an epoch, with `spec` written beside as tiny.json. */
export function columnDataset(o: { train: number; test: number; classes: number; seed: number; spec: NetSpec }): string {
  const dir = mkdtempSync(join(tmpdir(), 'column-data-'));
  const rng = new Philox(o.seed);
  for (const [split, count] of [
    ['train', o.train],
    ['t10k', o.test],
  ] as const) {
    const labels = Uint8Array.from({ length: count }, (_, i) => i % o.classes);
    const pixels = new Uint8Array(count * 64);
    labels.forEach((label, i) => {
      for (let k = 0; k < 64; k++) pixels[i * 64 + k] = ((k % 8) >> 1 === label ? 180 : 40) + rng.nextInt(60);
    });
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([count, 8, 8], pixels));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([count], labels));
  }
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify(o.spec));
  return dir;
}

/** 28×28 grey images whose class (of 4) is the bright band of rows, with noise, as IDX files. */
export function bandDataset(train: number, test: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'band-idx-'));
  const rng = new Philox(28);
  for (const [split, count] of [
    ['train', train],
    ['t10k', test],
  ] as const) {
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 4);
    const pixels = new Uint8Array(count * 784);
    labels.forEach((label, i) => {
      for (let k = 0; k < 784; k++) pixels[i * 784 + k] = (Math.floor(k / 28 / 7) === label ? 150 : 30) + rng.nextInt(100);
    });
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([count, 28, 28], pixels));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([count], labels));
  }
  return dir;
}

/** `fn` run with the environment variable `name` set to `value`, restored after (settings the engine reads at each call). */
export async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}
