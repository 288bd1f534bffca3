/**
 * What a trained net's hidden layers see, and which images they see alike: the activations of a
 * blob for every image of a source, and the exact Euclidean nearest neighbours among them (the
 * paper's Figure 4 compares images by their last hidden layer's activations).
 */
import type { BatchSource } from '../data/batches.js';
import type { Net } from '../net/net.js';
import { checkFiniteInput } from '../net/inference.js';
import { netRoles } from '../net/roles.js';
import { sizeOf } from '../tensor.js';
import { yieldToEvents } from './evaluate.js';

/** The last hidden layer: the blob the classifier reads, or, when that is a dropout's output, the
 * dropout's input (the same values in evaluation, under the name of the layer that made them). */
export function lastHiddenBlob(net: Net): string {
  const producer = (blob: string) => net.layers.find((l) => net.layerOutputs(l.spec.name).includes(blob));
  const classifier = producer(netRoles(net).logits);
  let blob = classifier ? net.layerInputs(classifier.spec.name)[0] : undefined;
  for (let layer = blob ? producer(blob) : undefined; blob && layer?.spec.type === 'dropout'; layer = producer(blob))
    blob = net.layerInputs(layer.spec.name)[0];
  if (!blob || net.inputNames.includes(blob)) throw new Error('the model has no hidden layer before its classifier');
  return blob;
}

/** The activations of `blob` for images [0, source.count), a batch at a time: `take(from, rows)`
 * gets each batch's rows (one row of `width` values per image, a view valid during the call). */
export async function forEachFeatureBatch(
  net: Net,
  blob: string,
  source: BatchSource,
  take: (from: number, rows: Float32Array, width: number) => void,
): Promise<void> {
  const { data, labels } = netRoles(net);
  const width = sizeOf(net.shapeOf(blob)) / net.batch;
  const x = new Float32Array(sizeOf(net.shapeOf(data)));
  const y = new Float32Array(net.batch);
  const order = Uint32Array.from({ length: source.count }, (_, i) => i);
  if (labels) net.setInput(labels, y);
  for (let from = 0; from < source.count; from += net.batch) {
    await yieldToEvents();
    const to = Math.min(source.count, from + net.batch);
    x.fill(0);
    await source.fill(order, from, to, x, y);
    checkFiniteInput(x, from, x.length / net.batch, source.source);
    net.setInput(data, x);
    net.forward({ training: false });
    const values = await net.read(blob);
    take(from, Float32Array.from(values.subarray(0, (to - from) * width)), width);
  }
}

/** The activations of `blob` for every image of `images`, one row of `width` values per image. */
export async function features(net: Net, blob: string, images: BatchSource): Promise<{ rows: Float32Array; width: number }> {
  const width = sizeOf(net.shapeOf(blob)) / net.batch;
  const rows = new Float32Array(images.count * width);
  await forEachFeatureBatch(net, blob, images, (from, batch) => rows.set(batch, from * width));
  return { rows, width };
}

export interface Neighbour {
  /** The image's index in the searched set (counted across every `add`). */
  index: number;
  /** The Euclidean distance, summed in float64. */
  distance: number;
}

/**
 * The exact k nearest rows to each query, over a set given a block at a time (so a 60,000-image
 * set's features need not be in memory at once). Ties go to the lower index.
 */
export class NearestNeighbours {
  private readonly best: Neighbour[][];

  constructor(
    private readonly queries: Float32Array,
    private readonly width: number,
    private readonly k: number,
  ) {
    if (width <= 0 || queries.length % width !== 0) throw new Error(`queries of ${queries.length} values are not rows of ${width}`);
    this.best = Array.from({ length: queries.length / width }, () => []);
  }

  /** Rows `first`, `first + 1`, … of the set. */
  add(block: Float32Array, first: number): void {
    const { width, k } = this;
    if (block.length % width !== 0) throw new Error(`a block of ${block.length} values is not rows of ${width}`);
    for (const [q, kept] of this.best.entries()) {
      const query = this.queries.subarray(q * width, (q + 1) * width);
      for (let r = 0; r < block.length / width; r++) {
        let squared = 0;
        for (let i = 0, at = r * width; i < width; i++, at++) {
          const d = query[i]! - block[at]!;
          squared += d * d;
        }
        const worst = kept[k - 1];
        if (kept.length === k && worst && squared >= worst.distance) continue; // later rows lose ties
        let at = kept.length;
        while (at > 0 && kept[at - 1]!.distance > squared) at--;
        kept.splice(at, 0, { index: first + r, distance: squared });
        if (kept.length > k) kept.pop();
      }
    }
  }

  /** Each query's neighbours, nearest first. */
  result(): Neighbour[][] {
    return this.best.map((kept) => kept.map((n) => ({ index: n.index, distance: Math.sqrt(n.distance) })));
  }
}

/** The exact k nearest rows of `set` to each row of `queries` (rows of `width` values). */
export function nearestNeighbours(queries: Float32Array, set: Float32Array, width: number, k: number): Neighbour[][] {
  const search = new NearestNeighbours(queries, width, k);
  search.add(set, 0);
  return search.result();
}
