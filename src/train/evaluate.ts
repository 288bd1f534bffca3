/** Scoring a net on a whole image set: top-1 and top-5 accuracy and the mean loss; logits of many examples, a batch at a time. */
import { mirrorImages, shiftImages } from '../data/augment.js';
import { type BatchSource, cropInput } from '../data/batches.js';
import { type Preprocess, roundHalfEven } from '../data/preprocess.js';
import type { RecordReader } from '../data/store.js';
import type { Net } from '../net/net.js';
import { checkFiniteInput, softmaxRows } from '../net/inference.js';
import { netRoles } from '../net/roles.js';

export interface EvalResult {
  top1: number;
  top5: number;
  loss: number;
  count: number;
  /** With `mirror` or several `views`: the scores of the first view alone, from the same pass. */
  singleView?: EvalResult;
  /** With `confusion`: images counted by label (row) and top-1 class (column). */
  confusion?: number[][];
  /** With `confusion`: the images whose top-1 class is not their label, in the set's order (a
   * row of scores with a NaN has no class: -1). */
  misses?: { index: number; label: number; predicted: number }[];
}

export interface EvalOptions {
  /** Average each image's softmax with its mirror image's, as the paper averages over reflections. */
  mirror?: boolean;
  /** Average each image's softmax over these views of the batch (each changes the batch in place;
   * `undefined` is the images as they come). Overrides `mirror`. */
  views?: (ImageView | undefined)[];
  /** Polled between batches: true stops with `Interrupted`. */
  interrupted?: () => boolean;
  /** One of the processes of a data-parallel run: it scores every `size`-th batch from its `rank`-th,
   * and the processes' hits and losses are summed (`sum`, on every rank) into the whole set's. */
  shard?: EvalShard;
  /** Also count the confusion matrix and list the misses (a page shows them after every epoch). */
  confusion?: boolean;
}

export interface EvalShard {
  rank: number;
  size: number;
  sum(values: Float64Array): Float64Array;
}

/** A view of a batch of `count` images of `shape`, made in place. */
export type ImageView = (batch: Float32Array, count: number, shape: [number, number, number]) => void;

/** Thrown when a long loop stops because its caller asked it to (Ctrl-C). */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

/** Lets queued events run (a signal's handler among them) between synchronous kernel calls. */
export function yieldToEvents(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  // a browser's worker: a message runs after the events queued before it, without setTimeout's 4 ms clamp
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(0);
  });
}

/** How many classes score above the label in one row of scores (0: a top-1 hit). A row with a NaN
 * is a miss at every rank: a diverged net must not score as a perfect one. */
export function classesAbove(scores: ArrayLike<number>, start: number, classes: number, label: number): number {
  let above = 0;
  for (let c = 0; c < classes; c++) {
    const score = scores[start + c]!;
    if (Number.isNaN(score)) return classes;
    if (score > scores[start + label]!) above++;
  }
  return above;
}

/** Top-1/top-5 accuracy and mean loss of the net (in evaluation mode) on a whole source. With
 * `mirror`, each image's softmax output is averaged with its mirror image's, as the paper averages
 * over reflected test patches, and the images' own scores come beside (`singleView`); with `views`,
 * averaged over those. */
export async function evaluate(net: Net, set: BatchSource, options: EvalOptions = {}): Promise<EvalResult> {
  const { data, labels, logits, classes } = netRoles(net);
  const size = set.count;
  if (size === 0) throw new Error(`${set.source}: no images to evaluate`);
  if (set.classes > classes) throw new Error(`${set.source}: its labels run over ${set.classes} classes, the model scores ${classes}`);
  const views = options.views ?? (options.mirror ? [undefined, mirrorImages] : [undefined]);
  const batch = net.batch;
  const images = new Float32Array(net.shapeOf(data).reduce((a, b) => a * b));
  const x = views.length > 1 ? new Float32Array(images.length) : images;
  const y = new Float32Array(batch);
  const view = new Float64Array(batch * classes),
    sum = new Float64Array(batch * classes);
  const indices = Uint32Array.from({ length: size }, (_, i) => i);
  const singleScore = new Score(),
    averagedScore = new Score(options.confusion ? classes : 0);
  const shard = options.shard ?? { rank: 0, size: 1 };
  for (let from = shard.rank * batch; from < size; from += shard.size * batch) {
    await yieldToEvents();
    if (options.interrupted?.()) throw new Interrupted('evaluation interrupted');
    const to = Math.min(size, from + batch);
    sum.fill(0);
    images.fill(0);
    y.fill(0);
    await set.fill(indices, from, to, images, y);
    checkFiniteInput(images, from, images.length / batch, set.source);
    if (labels) net.setInput(labels, y);
    for (const [v, transform] of views.entries()) {
      if (x !== images) x.set(images);
      transform?.(x, to - from, set.shape);
      net.setInput(data, x);
      net.forward({ training: false });
      softmaxRows(await net.read(logits), batch, classes, view);
      if (v === 0 && views.length > 1) singleScore.add(view, from, to - from, classes, y);
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + view[i]! / views.length;
    }
    averagedScore.add(sum, from, to - from, classes, y);
  }
  if (options.shard) for (const score of [singleScore, averagedScore]) score.sumOver(options.shard);
  // one view: its average is itself (0 + p/1), so the averaged score is the single one, confusion included
  return views.length > 1 ? { ...averagedScore.result(size), singleView: singleScore.result(size) } : averagedScore.result(size);
}

/** The paper's ten test patches (section 4.1) for small images trained on crops of the image padded
 * by `pad` pixels of value `fill`: the four corner crops and the centre one, each also reflected. */
export function paddedTestViews(pad: number, fill: number): ImageView[] {
  const offsets = [
    [0, 0],
    [-pad, -pad],
    [pad, -pad],
    [-pad, pad],
    [pad, pad],
  ] as const;
  return [false, true].flatMap((mirror) =>
    offsets.map(([dx, dy]): ImageView => {
      let scratch = new Float32Array(0);
      return (batch, count, shape) => {
        if (scratch.length !== shape[0] * shape[1] * shape[2]) scratch = new Float32Array(shape[0] * shape[1] * shape[2]);
        shiftImages(batch, count, shape, { dx, dy, mirror }, fill, scratch);
      };
    }),
  );
}

/** Running top-1/top-5 hits and loss over batches of class probabilities. */
class Score {
  private top1 = 0;
  private top5 = 0;
  private loss = 0;
  /** With `classes`: the confusion matrix, row-major, and the misses. */
  private readonly confusion: Float64Array;
  private misses: { index: number; label: number; predicted: number }[] = [];

  constructor(private readonly classes = 0) {
    this.confusion = new Float64Array(classes * classes);
  }

  add(probabilities: Float64Array, first: number, images: number, classes: number, labels: Float32Array): void {
    for (let b = 0; b < images; b++) {
      const label = labels[b]!;
      const above = classesAbove(probabilities, b * classes, classes, label);
      this.loss -= Math.log(Math.max(probabilities[b * classes + label]!, Number.MIN_VALUE));
      if (above === 0) this.top1++;
      if (above < 5) this.top5++;
      if (this.classes === 0) continue;
      const predicted = topClass(probabilities, b * classes, classes);
      if (predicted >= 0) this.confusion[label * classes + predicted]!++;
      if (predicted !== label) this.misses.push({ index: first + b, label, predicted });
    }
  }

  /** The hits and losses (and confusion counts) of every process's share, summed; misses are each process's own. */
  sumOver(shard: EvalShard): void {
    const sums = shard.sum(Float64Array.of(this.top1, this.top5, this.loss, ...this.confusion));
    [this.top1, this.top5, this.loss] = sums;
    this.confusion.set(sums.subarray(3));
  }

  result(count: number): EvalResult {
    const scores = { top1: this.top1 / count, top5: this.top5 / count, loss: this.loss / count, count };
    if (this.classes === 0) return scores;
    const rows = Array.from({ length: this.classes }, (_, r) =>
      Array.from(this.confusion.subarray(r * this.classes, (r + 1) * this.classes)),
    );
    return { ...scores, confusion: rows, misses: this.misses };
  }
}

/** The class of a row's highest score; -1 for a row with a NaN. */
function topClass(scores: ArrayLike<number>, start: number, classes: number): number {
  let best = 0;
  for (let c = 0; c < classes; c++) {
    if (Number.isNaN(scores[start + c]!)) return -1;
    if (scores[start + c]! > scores[start + best]!) best = c;
  }
  return best;
}

/** The paper's test patches (section 4.1) of a `size`² image for a `crop`² input: the centre
 * alone, or the four corners and the centre, each also reflected. */
export function testCrops(size: number, crop: number, crops: 'center' | 'ten'): { x: number; y: number; flip: boolean }[] {
  const centre = roundHalfEven((size - crop) / 2),
    far = size - crop;
  const five = [
    [centre, centre],
    [0, 0],
    [far, 0],
    [0, far],
    [far, far],
  ] as const;
  if (crops === 'center') return [{ x: centre, y: centre, flip: false }];
  return [false, true].flatMap((flip) => five.map(([x, y]) => ({ x, y, flip })));
}

/**
 * Top-1/top-5 accuracy and mean loss on a prepared store's split: each image's softmax averaged
 * over its test crops. The net's batch holds whole images' crops (a multiple of their number).
 */
export async function evaluateStore(
  net: Net,
  reader: RecordReader,
  preprocess: Preprocess,
  options: { crops: 'center' | 'ten'; interrupted?: () => boolean; onProgress?: (done: number) => void },
): Promise<EvalResult> {
  const { data, labels, logits, classes } = netRoles(net);
  const [channels, crop, width] = net.shapeOf(data).slice(1) as [number, number, number];
  const { size } = reader.index;
  if (channels !== 3 || crop !== width || crop > size)
    throw new Error(`the model takes ${channels}×${crop}×${width} images; the store holds 3×${size}×${size}`);
  const windows = testCrops(size, crop, options.crops);
  if (net.batch % windows.length !== 0) throw new Error(`a batch of ${net.batch} does not hold whole images' ${windows.length} crops`);
  const perBatch = net.batch / windows.length;
  const pixels = new Uint8Array(3 * size * size),
    patch = 3 * crop * crop,
    noShift = [0, 0, 0];
  const x = new Float32Array(net.batch * patch);
  const y = new Float32Array(net.batch),
    imageLabels = new Float32Array(perBatch);
  const probabilities = new Float64Array(net.batch * classes),
    averaged = new Float64Array(perBatch * classes);
  const score = new Score();
  for (let from = 0; from < reader.count; from += perBatch) {
    await yieldToEvents();
    if (options.interrupted?.()) throw new Interrupted('evaluation interrupted');
    const images = Math.min(perBatch, reader.count - from);
    x.fill(0);
    for (let i = 0; i < images; i++) {
      imageLabels[i] = reader.read(from + i, pixels);
      if (imageLabels[i]! >= classes)
        throw new Error(`${reader.split} image ${from + i} has label ${imageLabels[i]}, the model scores ${classes} classes`);
      windows.forEach((w, k) => {
        cropInput(pixels, size, w, crop, preprocess, noShift, x, (i * windows.length + k) * patch);
        y[i * windows.length + k] = imageLabels[i]!;
      });
    }
    checkFiniteInput(x, from, patch * windows.length, reader.split);
    net.setInput(data, x);
    if (labels) net.setInput(labels, y);
    net.forward({ training: false });
    softmaxRows(await net.read(logits), net.batch, classes, probabilities);
    averaged.fill(0);
    for (let i = 0; i < images; i++)
      for (let k = 0; k < windows.length; k++)
        for (let c = 0; c < classes; c++)
          averaged[i * classes + c]! += probabilities[(i * windows.length + k) * classes + c]! / windows.length;
    score.add(averaged, from, images, classes, imageLabels);
    options.onProgress?.(from + images);
  }
  return score.result(reader.count);
}
