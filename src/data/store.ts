/**
 * A prepared image store: every photo decoded once, rescaled as the paper (shorter side to `size`,
 * the centre `size`×`size` cropped), and kept as uint8 records that training and evaluation read
 * without decoding again — as Caffe's LMDB and FFCV's files do.
 *
 * STORE/index.json        what is in it: splits, shards, classes, statistics
 * STORE/<split>-NNNNN.u8  records of a 2-byte little-endian label then C×size×size pixel planes
 * STORE/mean-image.f32    the training split's mean image (C×size×size float32, values 0–255)
 * STORE/skipped.txt       every file not stored, with why (unreadable, corrupt, truncated, not an image)
 *
 * The statistics are the paper's: the mean image, and the eigenvectors and eigenvalues of the 3×3
 * covariance of the training set's RGB pixel values (for its PCA colour noise). Their sums are
 * integers held exactly in float64, so they do not depend on the order or the interruptions of
 * the work. `prepare` commits a shard at a time (atomically, with the sums so far in
 * `progress.json`); an interrupted one resumes at the first shard not committed, and ends with the
 * same store, byte for byte.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { describeError, readFileBytes, removeStaleTemporaries, writeFileAtomic } from '../io/files.js';
import { uprightPixels } from './images.js';
import { listPhotos, type PhotoDataset } from './photos.js';

const FORMAT = 'alexnet-store/1';

export interface StoreSplit {
  count: number;
  shards: { file: string; count: number }[];
}

export interface StoreIndex {
  format: string;
  /** Images are channels × size × size. */
  size: number;
  channels: number;
  interpolation: string;
  source: string;
  layout: string;
  classIds: string[];
  classNames: string[];
  splits: Record<string, StoreSplit>;
  /** Over the training split's pixels, values 0–255: per-channel mean, covariance, and its
   * eigenvalues (descending) with their unit eigenvectors (rows). */
  stats: { images: number; rgbMean: number[]; covariance: number[][]; eigenvalues: number[]; eigenvectors: number[][] };
  skipped: number;
}

interface Progress {
  /** Shards committed, per split. */
  done: Record<string, { file: string; count: number }[]>;
  skipped: string[];
  /** Sums over the training images stored so far: pixel planes, channels, channel products. */
  images: number;
  pixelSums: Float64Array;
  channelSums: number[];
  productSums: number[];
}

export interface PrepareOptions {
  size?: number;
  /** Images per shard file: the unit of a commit (256 images of 256² are 48 MiB). */
  shardImages?: number;
  /** Images decoded at once (sharp decodes on libuv's worker threads). */
  jobs?: number;
  /** `data` as `listPhotos` read it already (listing ImageNet's folders takes seconds). */
  dataset?: PhotoDataset;
  onProgress?: (p: { done: number; total: number; skipped: number; imagesPerSecond: number }) => void;
}

/** Decodes a dataset folder into a store at `out`, resuming a `prepare` that was interrupted. */
export async function prepareStore(data: string, out: string, options: PrepareOptions = {}): Promise<StoreIndex> {
  const size = options.size ?? 256;
  const dataset = storable(options.dataset ?? listPhotos(data));
  if (existsSync(join(out, 'index.json')))
    throw new Error(`${out} already holds a prepared store (index.json); remove it to prepare again`);
  mkdirSync(out, { recursive: true });
  removeStaleTemporaries(out); // a killed prepare's half-written file
  const settingsFile = join(out, 'settings.json');
  const shardImages = options.shardImages ?? 256;
  const settings = JSON.stringify({ data, size, shardImages });
  if (existsSync(settingsFile) && readFileSync(settingsFile, 'utf8') !== settings)
    throw new Error(`${out} holds an interrupted prepare of other data or size (${readFileSync(settingsFile, 'utf8')}); remove it first`);
  writeFileAtomic(settingsFile, settings);
  const plane = size * size;
  const progress = readProgress(out) ?? emptyProgress(dataset, size);
  const total = Object.values(dataset.splits).reduce((n, s) => n + s.files.length, 0);
  const start = performance.now();
  let done = Object.entries(progress.done).reduce(
    (n, [split, shards]) => n + Math.min(dataset.splits[split]?.files.length ?? 0, shards.length * shardImages),
    0,
  );
  const resumedAt = done;
  for (const [split, { files, labels }] of Object.entries(dataset.splits)) {
    const shards = (progress.done[split] ??= []);
    const first = shards.length * shardImages;
    const decoded = orderedDecodes(files, first, size, options.jobs ?? availableParallelism());
    for (let from = first; from < files.length; from += shardImages) {
      const to = Math.min(files.length, from + shardImages);
      const record = 2 + 3 * plane;
      const shard = new Uint8Array((to - from) * record);
      let at = 0;
      for (let i = from; i < to; i++) {
        const pixels = await decoded(i);
        if (!(pixels instanceof Uint8Array)) {
          progress.skipped.push(`${files[i]}\t${pixels.reason}`);
          continue;
        }
        shard[at] = labels[i]! & 0xff;
        shard[at + 1] = labels[i]! >> 8;
        shard.set(pixels, at + 2);
        if (split === 'train') accumulate(progress, pixels, plane);
        at += record;
      }
      const stored = at / record;
      const file = `${split}-${String(shards.length).padStart(5, '0')}.u8`;
      writeFileAtomic(join(out, file), shard.subarray(0, at));
      shards.push({ file, count: stored });
      writeFileAtomic(join(out, 'progress.json'), JSON.stringify({ ...progress, pixelSums: Array.from(progress.pixelSums) }));
      done += to - from;
      const seconds = (performance.now() - start) / 1000;
      options.onProgress?.({
        done,
        total,
        skipped: progress.skipped.length,
        imagesPerSecond: (done - resumedAt) / Math.max(seconds, 1e-9),
      });
    }
  }
  return finish(out, dataset, progress, size);
}

/** A dataset whose labels fit a record's two bytes. */
function storable(dataset: PhotoDataset): PhotoDataset {
  if (dataset.classIds.length > 65_536)
    throw new Error(`${dataset.root}: ${dataset.classIds.length} classes; a store's labels hold at most 65,536`);
  return dataset;
}

/** A function that returns file i's planar RGB bytes (or why it could not be read), asked in
 * order from `start`, while the next `jobs` files decode (sharp decodes on libuv's threads, one
 * thread per image: across images is what scales for images this small). */
function orderedDecodes(files: string[], start: number, size: number, jobs: number) {
  sharp.concurrency(1);
  const pending = new Map<number, Promise<Uint8Array | { reason: string }>>();
  const decode = (i: number) => decodePhoto(files[i]!, size).catch((error: Error) => ({ reason: error.message.replace(/\s+/g, ' ') }));
  let next = start;
  const fill = () => {
    for (; next < files.length && pending.size < jobs; next++) pending.set(next, decode(next));
  };
  return async (i: number) => {
    fill();
    let result = await pending.get(i)!;
    pending.delete(i);
    if (!(result instanceof Uint8Array)) {
      // libvips keeps one error buffer for all threads: concurrent failures mix their messages.
      // Decoded again alone, the file's own reason is recorded, the same in every run.
      await Promise.allSettled(pending.values());
      result = await decode(i);
    }
    fill();
    return result;
  };
}

/**
 * One photo as the paper prepares it: upright RGB (`uprightPixels`), the shorter side rescaled to
 * `size` by libvips' bilinear (antialiased) reduction and the centre `size`×`size` cropped; planar.
 */
export async function decodePhoto(file: string, size: number): Promise<Uint8Array> {
  const { data, info } = await uprightPixels(file, 3)
    .resize(size, size, { fit: 'cover', position: 'centre', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== 3 * size * size) throw new Error(`decoded to ${info.channels} channels, ${data.length} bytes`);
  const plane = size * size;
  const planar = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    planar[p] = data[3 * p]!;
    planar[plane + p] = data[3 * p + 1]!;
    planar[2 * plane + p] = data[3 * p + 2]!;
  }
  return planar;
}

function accumulate(progress: Progress, pixels: Uint8Array, plane: number): void {
  progress.images++;
  const { pixelSums, channelSums, productSums } = progress;
  for (let i = 0; i < pixels.length; i++) pixelSums[i]! += pixels[i]!;
  let r = 0,
    g = 0,
    b = 0,
    rr = 0,
    rg = 0,
    rb = 0,
    gg = 0,
    gb = 0,
    bb = 0;
  for (let p = 0; p < plane; p++) {
    const x = pixels[p]!,
      y = pixels[plane + p]!,
      z = pixels[2 * plane + p]!;
    r += x;
    g += y;
    b += z;
    rr += x * x;
    rg += x * y;
    rb += x * z;
    gg += y * y;
    gb += y * z;
    bb += z * z;
  }
  channelSums[0]! += r;
  channelSums[1]! += g;
  channelSums[2]! += b;
  [rr, rg, rb, rg, gg, gb, rb, gb, bb].forEach((v, i) => (productSums[i]! += v));
}

function readProgress(out: string): Progress | undefined {
  const file = join(out, 'progress.json');
  if (!existsSync(file)) return undefined;
  try {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Progress;
    return { ...stored, pixelSums: Float64Array.from(stored.pixelSums) };
  } catch {
    throw new Error(`${file} is damaged; remove ${out} and prepare again`);
  }
}

function finish(out: string, dataset: PhotoDataset, progress: Progress, size: number): StoreIndex {
  const { index, meanImage } = described(dataset, progress, size);
  writeFileAtomic(join(out, 'mean-image.f32'), new Uint8Array(meanImage.buffer));
  writeFileAtomic(
    join(out, 'skipped.txt'),
    progress.skipped.map((line) => `${relative(dataset.root, line.split('\t')[0]!)}\t${line.split('\t')[1]}`).join('\n') +
      (progress.skipped.length ? '\n' : ''),
  );
  writeFileAtomic(join(out, 'index.json'), `${JSON.stringify(index, null, 1)}\n`);
  rmSync(join(out, 'progress.json'), { force: true });
  rmSync(join(out, 'settings.json'), { force: true });
  return index;
}

/** The index and the mean image of what `progress` holds: the statistics from its exact sums. */
function described(dataset: PhotoDataset, progress: Progress, size: number): { index: StoreIndex; meanImage: Float32Array } {
  const n = progress.images;
  const pixels = n * size * size;
  const rgbMean = progress.channelSums.map((s) => (pixels > 0 ? s / pixels : 0));
  const covariance = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => (pixels > 0 ? progress.productSums[3 * i + j]! / pixels - rgbMean[i]! * rgbMean[j]! : 0)),
  );
  const { values, vectors } = symmetricEigen(covariance);
  const index: StoreIndex = {
    format: FORMAT,
    size,
    channels: 3,
    interpolation: 'shorter side to size by libvips bilinear (antialiased) reduction, centre crop; EXIF orientation applied',
    source: dataset.root,
    layout: dataset.layout,
    classIds: dataset.classIds,
    classNames: dataset.classNames,
    splits: Object.fromEntries(
      Object.entries(progress.done).map(([split, shards]) => [split, { count: shards.reduce((c, s) => c + s.count, 0), shards }]),
    ),
    stats: { images: n, rgbMean, covariance, eigenvalues: values, eigenvectors: vectors },
    skipped: progress.skipped.length,
  };
  return { index, meanImage: Float32Array.from(progress.pixelSums, (s) => (n > 0 ? s / n : 0)) };
}

function emptyProgress(dataset: PhotoDataset, size: number): Progress {
  return {
    done: {},
    skipped: dataset.ignored.map((f) => `${f}\tnot an image (by its extension)`),
    images: 0,
    pixelSums: new Float64Array(3 * size * size),
    channelSums: [0, 0, 0],
    productSums: new Array<number>(9).fill(0),
  };
}

/** Sets this size and smaller decode into memory (`train --data PHOTOS`); larger ones need `prepare`. */
export const IN_MEMORY_IMAGES = 20_000;

/**
 * A folder of photos decoded into memory, as `prepare` would store it: for small sets, trained on
 * or evaluated without writing a store. Its readers serve records as a store's do.
 */
export async function prepareInMemory(
  data: string,
  options: Omit<PrepareOptions, 'shardImages'> = {},
): Promise<Record<string, RecordReader>> {
  const size = options.size ?? 256;
  const dataset = storable(options.dataset ?? listPhotos(data));
  const total = Object.values(dataset.splits).reduce((n, s) => n + s.files.length, 0);
  if (total > IN_MEMORY_IMAGES)
    throw new Error(
      `${data} holds ${total} photos, more than the ${IN_MEMORY_IMAGES} decoded in memory: ` +
        `prepare a store (alexnet prepare --data ${data} --out STORE)`,
    );
  const progress = emptyProgress(dataset, size);
  const record = 2 + 3 * size * size;
  const records: Record<string, Uint8Array> = {};
  const start = performance.now();
  let done = 0;
  for (const [split, { files, labels }] of Object.entries(dataset.splits)) {
    const decoded = orderedDecodes(files, 0, size, options.jobs ?? availableParallelism());
    const bytes = new Uint8Array(files.length * record);
    let at = 0;
    for (let i = 0; i < files.length; i++) {
      const pixels = await decoded(i);
      done++;
      options.onProgress?.({ done, total, skipped: progress.skipped.length, imagesPerSecond: (1000 * done) / (performance.now() - start) });
      if (!(pixels instanceof Uint8Array)) {
        progress.skipped.push(`${files[i]}\t${pixels.reason}`);
        continue;
      }
      bytes.set([labels[i]! & 0xff, labels[i]! >> 8], at);
      bytes.set(pixels, at + 2);
      if (split === 'train') accumulate(progress, pixels, size * size);
      at += record;
    }
    records[split] = bytes.subarray(0, at);
    progress.done[split] = [{ file: '(memory)', count: at / record }];
  }
  const { index } = described(dataset, progress, size);
  return Object.fromEntries(Object.entries(records).map(([split, bytes]) => [split, new MemoryReader(index, split, bytes)]));
}
/** Jacobi rotations: eigenvalues (descending) and unit eigenvectors (rows) of a symmetric 3×3. */
export function symmetricEigen(matrix: number[][]): { values: number[]; vectors: number[][] } {
  const a = matrix.map((row) => [...row]);
  const v = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[0]![1]! ** 2 + a[0]![2]! ** 2 + a[1]![2]! ** 2;
    if (off < 1e-30) break;
    for (const [p, q] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ] as const) {
      if (Math.abs(a[p]![q]!) < 1e-300) continue;
      const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1),
        s = t * c;
      for (let k = 0; k < 3; k++) {
        const akp = a[k]![p]!,
          akq = a[k]![q]!;
        a[k]![p] = c * akp - s * akq;
        a[k]![q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = a[p]![k]!,
          aqk = a[q]![k]!;
        a[p]![k] = c * apk - s * aqk;
        a[q]![k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[k]![p]!,
          vkq = v[k]![q]!;
        v[k]![p] = c * vkp - s * vkq;
        v[k]![q] = s * vkp + c * vkq;
      }
    }
  }
  const order = [0, 1, 2].sort((i, j) => a[j]![j]! - a[i]![i]!);
  return { values: order.map((i) => a[i]![i]!), vectors: order.map((i) => [v[0]![i]!, v[1]![i]!, v[2]![i]!]) };
}

/** A store's index, checked; its shards are read by `StoreReader`. */
export function openStore(dir: string): StoreIndex {
  const file = join(dir, 'index.json');
  if (!existsSync(file)) {
    const hint = existsSync(join(dir, 'progress.json'))
      ? ': its prepare was interrupted; run it again to finish'
      : ' (prepare one with alexnet prepare)';
    throw new Error(`${dir} is not a prepared store${hint}`);
  }
  let index: StoreIndex;
  try {
    index = JSON.parse(new TextDecoder().decode(readFileBytes(file, 'store index'))) as StoreIndex;
  } catch {
    throw new Error(`${file} is not valid JSON`);
  }
  if (index.format !== FORMAT) throw new Error(`${file}: format ${String(index.format)}, not ${FORMAT}`);
  return index;
}

export function isStore(dir: string): boolean {
  return existsSync(join(dir, 'index.json')) || existsSync(join(dir, 'progress.json'));
}

/** One split's records by index: a store's files, or photos decoded into memory. */
export interface RecordReader {
  readonly index: StoreIndex;
  readonly split: string;
  readonly count: number;
  /** Image `i`'s pixels (channels × size × size) into `pixels`; returns its label. */
  read(i: number, pixels: Uint8Array): number;
  close(): void;
  /** The store folder, when the records are files (loader threads open their own). */
  readonly dir?: string;
}

class MemoryReader implements RecordReader {
  readonly count: number;
  private readonly recordBytes: number;

  constructor(
    readonly index: StoreIndex,
    readonly split: string,
    private readonly bytes: Uint8Array,
  ) {
    this.recordBytes = 2 + 3 * index.size * index.size;
    this.count = bytes.length / this.recordBytes;
  }

  read(i: number, pixels: Uint8Array): number {
    const at = i * this.recordBytes;
    pixels.set(this.bytes.subarray(at + 2, at + this.recordBytes));
    return this.bytes[at]! | (this.bytes[at + 1]! << 8);
  }

  close(): void {}
}

/** Random access to one split's records (one read per image: memory stays one image per call). */
export class StoreReader implements RecordReader {
  readonly count: number;
  readonly recordBytes: number;
  private readonly starts: number[] = [];
  private readonly fds: (number | undefined)[];
  private readonly record: Uint8Array;

  constructor(
    readonly dir: string,
    readonly index: StoreIndex,
    readonly split: string,
  ) {
    const entry = index.splits[split];
    if (!entry) throw new Error(`${dir} has no '${split}' split (it has ${Object.keys(index.splits).join(', ')})`);
    this.recordBytes = 2 + index.channels * index.size * index.size;
    let at = 0;
    for (const shard of entry.shards) {
      this.starts.push(at);
      at += shard.count;
    }
    this.count = at;
    this.fds = entry.shards.map(() => undefined);
    this.record = new Uint8Array(this.recordBytes);
  }

  /** Image `i`'s pixels (channels × size × size) into `pixels`; returns its label. */
  read(i: number, pixels: Uint8Array): number {
    const shard = lastAtOrBelow(this.starts, i);
    const fd = (this.fds[shard] ??= openShard(join(this.dir, this.index.splits[this.split]!.shards[shard]!.file)));
    const offset = (i - this.starts[shard]!) * this.recordBytes;
    if (readSync(fd, this.record, 0, this.recordBytes, offset) !== this.recordBytes)
      throw new Error(
        `${this.dir}: shard ${this.index.splits[this.split]!.shards[shard]!.file} is shorter than its index says (truncated?)`,
      );
    pixels.set(this.record.subarray(2));
    return this.record[0]! | (this.record[1]! << 8);
  }

  close(): void {
    for (const fd of this.fds) if (fd !== undefined) closeSync(fd);
    this.fds.fill(undefined);
  }
}

/** The index of the last of the ascending `starts` that is ≤ `i` (binary search: this runs for
 * every image read, and ImageNet's store has ~5,000 shards). */
function lastAtOrBelow(starts: readonly number[], i: number): number {
  let low = 0,
    high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (starts[mid]! <= i) low = mid;
    else high = mid - 1;
  }
  return low;
}

function openShard(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    throw new Error(`cannot read store shard ${path}: ${describeError(error)}`, { cause: error });
  }
}
