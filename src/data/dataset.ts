/**
 * In-memory image classification datasets (small images: MNIST, Fashion-MNIST, CIFAR): uint8
 * pixels in NCHW order plus one label per image, turned into normalised float batches.
 */
import { existsSync, statSync } from 'node:fs';
import { readFileBytes, readLines } from '../io/files.js';
import { holdsPhotos } from './photos.js';
import { shuffled, streams } from '../random.js';
import { basename, join } from 'node:path';
import { type IdxArray, readIdx } from './idx.js';

export interface ImageSet {
  /** N × C × H × W bytes. */
  pixels: Uint8Array;
  labels: Uint8Array;
  /** Per-image shape [C, H, W]. */
  shape: [number, number, number];
  classes: number;
  source: string;
  /** When the dataset (or the caller) names its classes. */
  classNames?: string[];
}

export type Split = 'train' | 'test';

/** How many classes there are, when the files alone cannot say: an explicit count (`--classes`) or
 * the class names (`--class-names`); else the folder's own names, then its format's count. */
export interface DatasetOptions {
  classes?: number;
  classNames?: string[];
}

export function imageCount(set: ImageSet): number {
  return set.labels.length;
}

/** The first file of `names` (each tried as is and gzipped) present in `dir`. */
function findFile(dir: string, names: string[]): string {
  for (const name of names) for (const candidate of [name, `${name}.gz`]) if (existsSync(join(dir, candidate))) return join(dir, candidate);
  throw new Error(`${dir}: no ${names.map((n) => `${n}[.gz]`).join(' or ')} found`);
}

/** A split as its files hold it, before its labels are checked against the classes. */
export interface RawSet {
  pixels: Uint8Array;
  labels: Uint8Array;
  shape: [number, number, number];
  /** The file each label came from, and the record where that file starts. */
  files: { path: string; first: number }[];
}

const IDX_FILES: Record<Split, [string[], string[]]> = {
  train: [
    ['train-images-idx3-ubyte', 'train-images.idx3-ubyte'],
    ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'],
  ],
  test: [
    ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte'],
    ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte'],
  ],
};

/** MNIST or Fashion-MNIST: IDX files of images and labels (Debian's dataset-fashion-mnist has them in
 * /usr/share/datasets/fashion-mnist). */
function idxSplit(dir: string, split: Split): RawSet {
  const [imageNames, labelNames] = IDX_FILES[split];
  const imagesPath = findFile(dir, imageNames),
    labelsPath = findFile(dir, labelNames);
  return idxSet(readIdx(imagesPath), readIdx(labelsPath), imagesPath, labelsPath);
}

/** IDX images N×H×W and their N labels, as `parseIdx` reads them (a page's files, or a folder's). */
export function idxSet(images: IdxArray, labels: IdxArray, imagesPath: string, labelsPath: string): RawSet {
  if (images.dims.length !== 3) throw new Error(`${imagesPath}: expected images N×H×W, got ${images.dims.join('×')}`);
  if (labels.dims.length !== 1) throw new Error(`${labelsPath}: expected labels N, got ${labels.dims.join('×')}`);
  if (labels.dims[0] !== images.dims[0])
    throw new Error(`${labelsPath}: ${labels.dims[0]} labels for ${images.dims[0]} images in ${imagesPath}`);
  return {
    pixels: images.data,
    labels: labels.data,
    shape: [1, images.dims[1]!, images.dims[2]!],
    files: [{ path: labelsPath, first: 0 }],
  };
}

/** CIFAR binary batches: records of label byte(s) then 3072 bytes (the R, G and B 32×32 planes).
 * CIFAR-10: one label byte, data_batch_1…5.bin and test_batch.bin; CIFAR-100: coarse and fine
 * label bytes (the fine label is used), train.bin and test.bin. */
function cifarSplit(dir: string, split: Split): RawSet {
  const ten = existsSync(join(dir, 'data_batch_1.bin'));
  const labelBytes = ten ? 1 : 2,
    record = labelBytes + 3072;
  const paths = !ten
    ? [join(dir, `${split}.bin`)]
    : split === 'test'
      ? [join(dir, 'test_batch.bin')]
      : [1, 2, 3, 4, 5].map((i) => join(dir, `data_batch_${i}.bin`)).filter((p, i) => i === 0 || existsSync(p));
  const files = paths.map((path) => {
    const bytes = readFileBytes(path, 'CIFAR batch');
    if (bytes.length % record !== 0)
      throw new Error(
        `${path}: ${bytes.length} bytes is not a whole number of ${record}-byte CIFAR records (truncated, or not a CIFAR binary batch)`,
      );
    return bytes;
  });
  const count = files.reduce((n, f) => n + f.length / record, 0);
  const pixels = new Uint8Array(count * 3072),
    labels = new Uint8Array(count);
  const origins: RawSet['files'] = [];
  let i = 0;
  for (const [f, bytes] of files.entries()) {
    origins.push({ path: paths[f]!, first: i });
    for (let at = 0; at < bytes.length; at += record, i++) {
      labels[i] = bytes[at + labelBytes - 1]!;
      pixels.set(bytes.subarray(at + labelBytes, at + record), i * 3072);
    }
  }
  return { pixels, labels, shape: [3, 32, 32], files: origins };
}

/** Class folders (train/, val/ or the root) or a list file, and no IDX or CIFAR files: what `prepare` reads. */
export function isPhotoFolder(dir: string): boolean {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory() || isCifar(dir) || existsSync(join(dir, 'train-images-idx3-ubyte')))
    return false;
  return holdsPhotos(dir);
}

function isCifar(dir: string): boolean {
  return existsSync(join(dir, 'data_batch_1.bin')) || existsSync(join(dir, 'train.bin')) || existsSync(join(dir, 'test_batch.bin'));
}

/** A dataset folder of either kind, IDX files (MNIST, Fashion-MNIST) or CIFAR binary batches: its
 * training and test splits, every label checked against the classes. */
export function loadDataset(dir: string, options: DatasetOptions = {}): { train: ImageSet; test: ImageSet } {
  const train = readSplit(dir, 'train');
  const classes = classCount(dir, train, options);
  return { train: checked(train, classes.count, classes.names), test: checked(readSplit(dir, 'test'), classes.count, classes.names) };
}

/** One split only: `eval` needs the test files, not the training files. Without a class count in
 * `options`, the folder's own names or format must tell it. */
export function loadSplit(dir: string, split: Split, options: DatasetOptions = {}): ImageSet {
  const set = readSplit(dir, split);
  const classes = classCount(dir, split === 'train' ? set : undefined, options);
  return checked(set, classes.count, classes.names);
}

function readSplit(dir: string, split: Split): RawSet {
  if (!existsSync(dir)) throw new Error(`dataset folder ${dir} does not exist`);
  if (!isCifar(dir) && holdsPhotos(dir))
    throw new Error(
      `${dir} is a folder of photos: decode it once into a store (alexnet prepare --data ${dir} --out STORE), then use the store`,
    );
  const set = isCifar(dir) ? cifarSplit(dir, split) : idxSplit(dir, split);
  if (set.labels.length === 0) throw new Error(`${set.files[0]!.path}: the ${split} split holds no images`);
  return set;
}

/** A training and a test split as checked sets: every label one of the classes, which `options`
 * give or the training labels tell (0…the largest, each with images). */
export function checkedSets(train: RawSet, test: RawSet, options: DatasetOptions = {}): { train: ImageSet; test: ImageSet } {
  for (const set of [train, test]) if (set.labels.length === 0) throw new Error(`${set.files[0]!.path}: holds no images`);
  const names = options.classNames;
  if (options.classes !== undefined && names && names.length !== options.classes)
    throw new Error(`${names.length} class names for ${options.classes} classes`);
  const count = options.classes ?? names?.length ?? inferredClasses(train);
  return { train: checked(train, count, names), test: checked(test, count, names) };
}

function classCount(dir: string, train: RawSet | undefined, options: DatasetOptions): { count: number; names?: string[] } {
  const names = options.classNames ?? datasetClassNames(dir);
  if (options.classes !== undefined && names && names.length !== options.classes) {
    throw new Error(`${names.length} class names${options.classNames ? '' : ` in ${dir}`} for ${options.classes} classes`);
  }
  const count = options.classes ?? names?.length ?? (isCifar(dir) ? (existsSync(join(dir, 'data_batch_1.bin')) ? 10 : 100) : undefined);
  if (count !== undefined) return { count, names };
  if (!train) throw new Error(`${dir}: the folder does not say how many classes it has; give the count (or a class-names.txt)`);
  return { count: inferredClasses(train) };
}

/** Without metadata, the classes are 0…largest label; every one of them must have images, or a
 * single wrong label would silently add classes to the model. */
function inferredClasses(set: RawSet): number {
  const counts = new Array<number>(256).fill(0);
  for (const label of set.labels) counts[label]!++;
  const classes = counts.findLastIndex((n) => n > 0) + 1;
  const empty = counts.slice(0, classes).flatMap((n, c) => (n === 0 ? [c] : []));
  if (empty.length > 0) {
    const largest = set.labels.indexOf(classes - 1);
    throw new Error(
      `${describeRecord(set, largest)} has label ${classes - 1}, but classes ${formatList(empty)} have no images: ` +
        'a label is wrong, or give the class count (--classes N, or a class-names.txt)',
    );
  }
  return classes;
}

function checked(set: RawSet, classes: number, classNames: string[] | undefined): ImageSet {
  if (classes < 2)
    throw new Error(`${set.files[0]!.path}: its labels name ${classes} class${classes === 1 ? '' : 'es'}; a classifier needs at least 2`);
  const bad = set.labels.findIndex((label) => label >= classes);
  if (bad >= 0)
    throw new Error(`${describeRecord(set, bad)} has label ${set.labels[bad]}, beyond the ${classes} classes (labels 0–${classes - 1})`);
  const { pixels, labels, shape, files } = set;
  return { pixels, labels, shape, classes, source: files[0]!.path, ...(classNames ? { classNames } : {}) };
}

/** "FILE: record N" for a label, counting records from 0 within its own file. */
function describeRecord(set: RawSet, index: number): string {
  const file = set.files.findLast((f) => f.first <= index)!;
  return `${file.path}: record ${index - file.first}`;
}

function formatList(values: number[]): string {
  return values.length <= 5 ? values.join(', ') : `${values.slice(0, 3).join(', ')}, … ${values.at(-1)} (${values.length} classes)`;
}

export const FASHION_MNIST = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/**
 * The class names a dataset folder carries: `class-names.txt` (one per line) if present, else
 * CIFAR-10's batches.meta.txt or CIFAR-100's fine_label_names.txt, else Fashion-MNIST's ten names
 * for an IDX folder named like it (its files carry none); undefined when unknown.
 */
export function datasetClassNames(dir: string): string[] | undefined {
  for (const file of ['class-names.txt', 'batches.meta.txt', 'fine_label_names.txt'])
    if (existsSync(join(dir, file))) return readLines(join(dir, file));
  if (/fashion/i.test(basename(dir.replace(/\/+$/, ''))) && !existsSync(join(dir, 'data_batch_1.bin'))) return FASHION_MNIST;
  return undefined;
}

/** `--class-names`: a text file with one name per line, or a comma-separated list. */
export function parseClassNames(value: string): string[] {
  const fromFile = existsSync(value);
  const names = fromFile ? readLines(value) : value.split(',').map((n) => n.trim());
  const where = fromFile ? value : `the list '${value}'`;
  if (names.length < 2 || names.some((n) => n === ''))
    throw new Error(`class names: ${where} must name at least 2 classes, none of them empty`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new Error(`class names: ${where} names '${twice}' twice`);
  return names;
}

/** Pixel bytes as the engine's inputs: (x/255 − mean)/std, written into `out` from `at`. */
export function normalisePixels(pixels: ArrayLike<number>, mean: number, std: number, out: Float32Array, at: number): void {
  for (let k = 0; k < pixels.length; k++) out[at + k] = (pixels[k]! / 255 - mean) / std;
}

/** Images `indices[from…to)` as floats (x/255 − mean)/std, with their labels. */
export function fillBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  from: number,
  to: number,
  mean: number,
  std: number,
  data: Float32Array,
  labels: Float32Array,
): void {
  const size = set.shape[0] * set.shape[1] * set.shape[2];
  for (let b = 0; b < to - from; b++) {
    const i = indices[from + b]!;
    const src = set.pixels.subarray(i * size, (i + 1) * size);
    normalisePixels(src, mean, std, data, b * size);
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

/** The first `count` images of a set (all of them when it holds fewer), copied into a new set. */
export function firstImages(set: ImageSet, count: number, source = set.source): ImageSet {
  return subset(
    set,
    Uint32Array.from({ length: Math.min(count, imageCount(set)) }, (_, i) => i),
    source,
  );
}

/** Mean and standard deviation of the pixel values x/255 over a set. */
export function pixelStatistics(set: ImageSet): { mean: number; std: number } {
  let sum = 0,
    sq = 0;
  for (const v of set.pixels) {
    sum += v;
    sq += v * v;
  }
  const n = set.pixels.length;
  if (n === 0) throw new Error(`${set.source}: no images to take pixel statistics of`);
  const mean = sum / n / 255;
  return { mean, std: Math.sqrt(Math.max(1e-12, sq / n / 65025 - mean * mean)) };
}

/** Holds out `count` images of a training set for validation, chosen by the seed's own stream. */
export function splitValidation(set: ImageSet, count: number, seed: number): { train: ImageSet; validation: ImageSet } {
  const size = imageCount(set);
  if (count >= size) throw new Error(`holding out ${count} images for validation leaves none to train on (the set has ${size})`);
  const order = shuffled(size, seed, streams.validationSplit);
  return {
    train: subset(set, order.subarray(count), set.source),
    validation: subset(set, order.subarray(0, count), `${set.source} (validation)`),
  };
}
