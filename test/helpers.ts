import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FloatArray, type NetSpec, Philox } from '../src/index.js';
import { firstImages, loadDataset } from '../src/data/dataset.js';

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

/** A new folder of IDX files (train and t10k) of side² grey images, each split's labels and pixels from `make`. */
function idxFolder(prefix: string, side: number, make: (split: 'train' | 't10k') => { labels: Uint8Array; pixels: Uint8Array }): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const split of ['train', 't10k'] as const) {
    const { labels, pixels } = make(split);
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([labels.length, side, side], pixels));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([labels.length], labels));
  }
  return dir;
}

/** `count` side² images of `classes` classes in turn, pixel k of an image of class c bright (plus
 * noise) where `bright(k, c)`. */
function brightPattern(
  count: number,
  side: number,
  classes: number,
  rng: Philox,
  bright: (k: number, c: number) => boolean,
  levels: number[],
) {
  const [dark, light, noise] = levels as [number, number, number];
  const labels = Uint8Array.from({ length: count }, (_, i) => i % classes);
  const pixels = new Uint8Array(count * side * side);
  labels.forEach((label, i) => {
    for (let k = 0; k < side * side; k++) pixels[i * side * side + k] = (bright(k, label) ? light : dark) + rng.nextInt(noise);
  });
  return { labels, pixels };
}

/** A folder of IDX files (train and t10k) of 8×8 images whose class (of up to 4) is the bright
 * column pair, learnable in an epoch, with `spec` written beside as tiny.json. */
export function columnDataset(o: { train: number; test: number; classes: number; seed: number; spec: NetSpec }): string {
  const rng = new Philox(o.seed);
  const dir = idxFolder('column-data-', 8, (split) =>
    brightPattern(split === 'train' ? o.train : o.test, 8, o.classes, rng, (k, c) => (k % 8) >> 1 === c, [40, 180, 60]),
  );
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify(o.spec));
  return dir;
}

/** Class c: a disc (even c) or a square (odd c) of its own colour on a noisy grey ground, placed
 * and sized at random, on photos of random sizes: learnable, not constant. */
export async function photoFolder(perClass: { train: number; val: number }, classes = 4): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'photos-'));
  const rng = new Philox(2012);
  const colours = [
    [200, 50, 40],
    [40, 90, 210],
    [60, 180, 60],
    [220, 200, 40],
  ];
  for (const [split, count] of Object.entries(perClass))
    for (let c = 0; c < classes; c++) {
      const dir = join(root, split, `class${c}`);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < count; i++) {
        const [w, h] = [200 + rng.nextInt(120), 200 + rng.nextInt(120)];
        const [cx, cy, r] = [
          w * (0.3 + 0.4 * rng.nextFloat()),
          h * (0.3 + 0.4 * rng.nextFloat()),
          Math.min(w, h) * (0.2 + 0.1 * rng.nextFloat()),
        ];
        const pixels = Buffer.alloc(w * h * 3);
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const inside = c % 2 === 0 ? (x - cx) ** 2 + (y - cy) ** 2 < r * r : Math.abs(x - cx) < r && Math.abs(y - cy) < r;
            for (let k = 0; k < 3; k++) pixels[(y * w + x) * 3 + k] = inside ? colours[c]![k]! + rng.nextInt(30) : 100 + rng.nextInt(80);
          }
        await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
          .jpeg({ quality: 90 })
          .toFile(join(dir, `p${i}.jpg`));
      }
    }
  return root;
}

/** 28×28 grey images whose class (of 4) is the bright band of rows, with noise, as IDX files. */
export function bandDataset(train: number, test: number): string {
  const rng = new Philox(28);
  return idxFolder('band-idx-', 28, (split) =>
    brightPattern(split === 'train' ? train : test, 28, 4, rng, (k, c) => Math.floor(k / 28 / 7) === c, [30, 150, 100]),
  );
}

/** Debian's Fashion-MNIST (dataset-fashion-mnist), installed by .ci/run. */
export const FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/** The first `train` and `test` images of Fashion-MNIST, as IDX files in a folder of their own. */
export function fashionSubset(train: number, test: number): string {
  const whole = loadDataset(FASHION_MNIST);
  return idxFolder('fashion-mnist-', 28, (split) => (split === 'train' ? firstImages(whole.train, train) : firstImages(whole.test, test)));
}

/** CIFAR-10's binary layout (data_batch_1.bin, test_batch.bin) holding 32×32 colour images whose
 * class (of 4) is the brighter channel pair and band, with noise. */
export function cifarDataset(train: number, test: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'cifar-'));
  const rng = new Philox(32);
  for (const [file, count] of [
    ['data_batch_1.bin', train],
    ['test_batch.bin', test],
  ] as const) {
    const bytes = new Uint8Array(count * 3073);
    for (let i = 0; i < count; i++) {
      const label = i % 4;
      bytes[i * 3073] = label;
      for (let c = 0; c < 3; c++)
        for (let k = 0; k < 1024; k++) {
          const bright = (c === label % 3) !== (Math.floor(k / 32 / 16) === label >> 1);
          bytes[i * 3073 + 1 + c * 1024 + k] = (bright ? 140 : 40) + rng.nextInt(80);
        }
    }
    writeFileSync(join(dir, file), bytes);
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
