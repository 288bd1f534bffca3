/**
 * In-memory image classification datasets (small images: MNIST, Fashion-MNIST, CIFAR): uint8
 * pixels in NCHW order plus one label per image, turned into normalised float batches.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readIdx } from './idx.js';

export interface ImageSet {
  /** N × C × H × W bytes. */
  pixels: Uint8Array;
  labels: Uint8Array;
  /** Per-image shape [C, H, W]. */
  shape: [number, number, number];
  classes: number;
  source: string;
}

export function imageCount(set: ImageSet): number {
  return set.labels.length;
}

/** The first file of `names` (each tried as is and gzipped) present in `dir`. */
function findFile(dir: string, names: string[]): string {
  for (const name of names) for (const candidate of [name, `${name}.gz`]) if (existsSync(join(dir, candidate))) return join(dir, candidate);
  throw new Error(`${dir}: no ${names.map((n) => `${n}[.gz]`).join(' or ')} found`);
}

function idxSet(imagesPath: string, labelsPath: string): ImageSet {
  const images = readIdx(imagesPath), labels = readIdx(labelsPath);
  if (images.dims.length !== 3) throw new Error(`${imagesPath}: expected images N×H×W, got ${images.dims.join('×')}`);
  if (labels.dims.length !== 1) throw new Error(`${labelsPath}: expected labels N, got ${labels.dims.join('×')}`);
  if (labels.dims[0] !== images.dims[0]) throw new Error(`${labelsPath}: ${labels.dims[0]} labels for ${images.dims[0]} images in ${imagesPath}`);
  const classes = labels.data.reduce((m, v) => Math.max(m, v), 0) + 1;
  return { pixels: images.data, labels: labels.data, shape: [1, images.dims[1]!, images.dims[2]!], classes, source: imagesPath };
}

/** MNIST or Fashion-MNIST: the four IDX files in one folder (Debian's dataset-fashion-mnist has them
 * in /usr/share/datasets/fashion-mnist). */
export function loadIdxDataset(dir: string): { train: ImageSet; test: ImageSet } {
  if (!existsSync(dir)) throw new Error(`dataset folder ${dir} does not exist`);
  return {
    train: idxSet(findFile(dir, ['train-images-idx3-ubyte', 'train-images.idx3-ubyte']), findFile(dir, ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'])),
    test: idxSet(findFile(dir, ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte']), findFile(dir, ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte'])),
  };
}

/** CIFAR binary batches: records of label byte(s) then 3072 bytes (the R, G and B 32×32 planes).
 * CIFAR-10: one label byte, data_batch_1…5.bin and test_batch.bin; CIFAR-100: coarse and fine
 * label bytes (the fine label is used), train.bin and test.bin. */
function cifarSet(paths: string[], labelBytes: number, classes: number): ImageSet {
  const record = labelBytes + 3072;
  const files = paths.map((path) => {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read ${path}: ${(error as Error).message}`);
    }
    if (bytes.length === 0 || bytes.length % record !== 0) throw new Error(`${path}: ${bytes.length} bytes is not a whole number of ${record}-byte CIFAR records (truncated, or not a CIFAR binary batch)`);
    return bytes;
  });
  const count = files.reduce((n, f) => n + f.length / record, 0);
  const pixels = new Uint8Array(count * 3072), labels = new Uint8Array(count);
  let i = 0;
  for (const [f, bytes] of files.entries()) {
    for (let at = 0; at < bytes.length; at += record, i++) {
      const label = bytes[at + labelBytes - 1]!;
      if (label >= classes) throw new Error(`${paths[f]}: record ${at / record} has label ${label}, beyond ${classes} classes`);
      labels[i] = label;
      pixels.set(bytes.subarray(at + labelBytes, at + record), i * 3072);
    }
  }
  return { pixels, labels, shape: [3, 32, 32], classes, source: paths[0]! };
}

export function loadCifarDataset(dir: string): { train: ImageSet; test: ImageSet } {
  if (existsSync(join(dir, 'data_batch_1.bin'))) {
    const train = [1, 2, 3, 4, 5].map((i) => join(dir, `data_batch_${i}.bin`)).filter((p, i) => i === 0 || existsSync(p));
    return { train: cifarSet(train, 1, 10), test: cifarSet([join(dir, 'test_batch.bin')], 1, 10) };
  }
  return { train: cifarSet([join(dir, 'train.bin')], 2, 100), test: cifarSet([join(dir, 'test.bin')], 2, 100) };
}

/** A dataset folder of either kind: IDX files (MNIST, Fashion-MNIST) or CIFAR binary batches. */
export function loadDataset(dir: string): { train: ImageSet; test: ImageSet } {
  if (!existsSync(dir)) throw new Error(`dataset folder ${dir} does not exist`);
  if (existsSync(join(dir, 'data_batch_1.bin')) || existsSync(join(dir, 'train.bin'))) return loadCifarDataset(dir);
  return loadIdxDataset(dir);
}

const FASHION_MNIST = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/**
 * The class names a dataset folder carries: `class-names.txt` (one per line) if present, else
 * CIFAR-10's batches.meta.txt or CIFAR-100's fine_label_names.txt, else Fashion-MNIST's ten names
 * for an IDX folder named like it (its files carry none); undefined when unknown.
 */
export function datasetClassNames(dir: string): string[] | undefined {
  for (const file of ['class-names.txt', 'batches.meta.txt', 'fine_label_names.txt']) if (existsSync(join(dir, file))) return lines(join(dir, file));
  if (/fashion/i.test(basename(dir.replace(/\/+$/, ''))) && !existsSync(join(dir, 'data_batch_1.bin'))) return FASHION_MNIST;
  return undefined;
}

/** `--class-names`: a text file with one name per line, or a comma-separated list. */
export function parseClassNames(value: string): string[] {
  return existsSync(value) ? lines(value) : value.split(',').map((n) => n.trim());
}

/** Images `indices[from…to)` as floats (x/255 − mean)/std, with their labels. */
export function fillBatch(set: ImageSet, indices: ArrayLike<number>, from: number, to: number, mean: number, std: number, data: Float32Array, labels: Float32Array): void {
  const size = set.shape[0] * set.shape[1] * set.shape[2];
  for (let b = 0; b < to - from; b++) {
    const i = indices[from + b]!;
    const src = set.pixels.subarray(i * size, (i + 1) * size);
    for (let k = 0; k < size; k++) data[b * size + k] = (src[k]! / 255 - mean) / std;
    labels[b] = set.labels[i]!;
  }
}

/** The images at `indices`, copied into a new set. */
export function subset(set: ImageSet, indices: ArrayLike<number>, source: string): ImageSet {
  const size = set.shape[0] * set.shape[1] * set.shape[2];
  const pixels = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    pixels.set(set.pixels.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = set.labels[i]!;
  }
  return { ...set, pixels, labels, source };
}

/** Mean and standard deviation of the pixel values x/255 over a set. */
export function pixelStatistics(set: ImageSet): { mean: number; std: number } {
  let sum = 0, sq = 0;
  for (const v of set.pixels) {
    sum += v;
    sq += v * v;
  }
  const n = set.pixels.length;
  const mean = sum / n / 255;
  return { mean, std: Math.sqrt(Math.max(1e-12, sq / n / 65025 - mean * mean)) };
}
