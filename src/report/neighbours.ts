/**
 * The paper's Figure 4 for any model and image set: query images, the model's top classes for each,
 * and the training images nearest to each in a hidden layer; with the share of those neighbours
 * that have the query's class (and the same share in pixel space, for comparison).
 */
import { imageSetBatches } from '../data/batches.js';
import { imageCount, type ImageSet, loadDataset, subset } from '../data/dataset.js';
import { uniformNormalisation } from '../data/preprocess.js';
import type { OpenedModel } from '../models/open.js';
import { softmaxRows } from '../net/inference.js';
import type { Net } from '../net/net.js';
import { netRoles } from '../net/roles.js';
import { features, forEachFeatureBatch, lastHiddenBlob, type Neighbour, NearestNeighbours } from '../train/features.js';
import { neighboursPng } from './plots.js';

export interface NeighbourSearch {
  /** The blob searched (default: the last hidden layer). */
  layer: string;
  /** Each query's nearest training images, nearest first. */
  neighbours: Neighbour[][];
  /** The share of neighbours whose class is the query's. */
  agreement: number;
}

export interface NeighbourOptions {
  /** Normalisation of pixel values: (x/255 − mean) / std. */
  mean: number;
  std: number;
  layer?: string;
  /** Neighbours per query (default 5). */
  count?: number;
}

/** The first `count` images of a set. */
export const firstImages = (set: ImageSet, count: number): ImageSet =>
  subset(
    set,
    Uint32Array.from({ length: count }, (_, i) => i),
    set.source,
  );

/** Each query image's nearest training images in the net's `layer`, the training set's features
 * computed a batch at a time (a 60,000-image set is never held whole). */
export async function searchNeighbours(net: Net, train: ImageSet, queries: ImageSet, o: NeighbourOptions): Promise<NeighbourSearch> {
  const layer = o.layer ?? lastHiddenBlob(net);
  const count = o.count ?? 5;
  const plain = { pad: 0, flip: false };
  const query = await features(net, layer, imageSetBatches(queries, o.mean, o.std, plain));
  const search = new NearestNeighbours(query.rows, query.width, count);
  await forEachFeatureBatch(net, layer, imageSetBatches(train, o.mean, o.std, plain), (from, rows) => search.add(rows, from));
  const neighbours = search.result();
  return { layer, neighbours, agreement: agreement(neighbours, train, queries) };
}

/** The same search on raw pixel values, the paper's contrast ("not close in L2"). */
export function searchPixels(train: ImageSet, queries: ImageSet, count = 5): NeighbourSearch {
  const width = queries.shape[0] * queries.shape[1] * queries.shape[2];
  const search = new NearestNeighbours(Float32Array.from(queries.pixels), width, count);
  const block = 1000;
  for (let from = 0; from < imageCount(train); from += block) {
    const to = Math.min(imageCount(train), from + block);
    search.add(Float32Array.from(train.pixels.subarray(from * width, to * width)), from);
  }
  const neighbours = search.result();
  return { layer: 'pixels', neighbours, agreement: agreement(neighbours, train, queries) };
}

function agreement(found: Neighbour[][], train: ImageSet, queries: ImageSet): number {
  const hits = found.reduce((a, ns, q) => a + ns.filter((n) => train.labels[n.index] === queries.labels[q]).length, 0);
  return (
    hits /
    Math.max(
      1,
      found.reduce((a, ns) => a + ns.length, 0),
    )
  );
}

/** The figure for query images `shown` of `queries`: each with the model's top five classes and its
 * nearest training images. */
export async function neighboursFigure(
  net: Net,
  train: ImageSet,
  queries: ImageSet,
  shown: number[],
  o: NeighbourOptions & { title?: string },
): Promise<{ png: Buffer; search: NeighbourSearch }> {
  for (const i of shown)
    if (!Number.isInteger(i) || i < 0 || i >= imageCount(queries))
      throw new Error(`image ${i} is not in ${queries.source} (0 to ${imageCount(queries) - 1})`);
  const picked = subset(queries, shown, queries.source);
  const search = await searchNeighbours(net, train, picked, o);
  const top = await topClasses(net, picked, o);
  const name = (set: ImageSet, label: number) => set.classNames?.[label] ?? `class ${label}`;
  const rows = shown.map((_, k) => ({
    query: { pixels: picked.pixels, shape: picked.shape, index: k, caption: name(queries, picked.labels[k]!) },
    top: top[k]!.map(({ label, probability }) => ({ label: name(queries, label), probability, correct: label === picked.labels[k] })),
    neighbours: search.neighbours[k]!.map((n) => ({
      pixels: train.pixels,
      shape: train.shape,
      index: n.index,
      caption: name(train, train.labels[n.index]!),
    })),
  }));
  const title = o.title ?? `The ${search.neighbours[0]?.length ?? 0} training images nearest in ${search.layer}`;
  return { png: await neighboursPng(rows, title), search };
}

/** The five most probable classes of every image of a set. */
async function topClasses(net: Net, set: ImageSet, o: NeighbourOptions) {
  const { classes } = netRoles(net);
  const logits = await features(net, netRoles(net).logits, imageSetBatches(set, o.mean, o.std, { pad: 0, flip: false }));
  const p = softmaxRows(logits.rows, imageCount(set), classes, new Float64Array(imageCount(set) * classes));
  return Array.from({ length: imageCount(set) }, (_, k) =>
    Array.from({ length: classes }, (_, c) => ({ label: c, probability: p[k * classes + c]! }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, 5),
  );
}

/** `alexnet neighbours`: the figure for test images `shown` of a dataset folder (IDX or CIFAR),
 * its training images searched, under an opened model and its own normalisation. */
export async function datasetNeighbours(
  model: OpenedModel,
  data: string,
  shown: number[],
  o: { layer?: string; count?: number } = {},
): Promise<{ png: Buffer; search: NeighbourSearch }> {
  const { train, test } = loadDataset(data, { classes: model.classes });
  const [channels, height, width] = model.net.shapeOf(model.data).slice(1);
  if (train.shape.join() !== [channels, height, width].join())
    throw new Error(`${model.path} takes ${channels}×${height}×${width} images, ${data} holds ${train.shape.join('×')}`);
  const { mean, std } = uniformNormalisation(model.preprocess ?? { channels: 'rgb', mean: [0], std: [1] }, model.path);
  return neighboursFigure(model.net, train, test, shown, { mean, std, ...o });
}
