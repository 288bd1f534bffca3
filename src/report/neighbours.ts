/**
 * The paper's Figure 4 for any model and images: query images, the model's top classes for each,
 * and the training images nearest to each in a hidden layer; with the share of those neighbours
 * that have the query's class (and the same share in pixel space, for comparison). The training
 * images are a dataset's (IDX, CIFAR) or a photo store's or folder's; the queries, test images of
 * the dataset or image files.
 */
import { basename } from 'node:path';
import { type BatchSource, imageSetBatches, storeBatches } from '../data/batches.js';
import { imageCount, type ImageSet, isPhotoFolder, loadDataset, subset } from '../data/dataset.js';
import { loadImageFiles } from '../data/images.js';
import { type Preprocess, uniformNormalisation } from '../data/preprocess.js';
import { isStore, openStore, prepareInMemory, type RecordReader, StoreReader } from '../data/store.js';
import type { OpenedModel } from '../models/open.js';
import { softmaxRows } from '../net/inference.js';
import type { Net } from '../net/net.js';
import { netRoles } from '../net/roles.js';
import { sizeOf } from '../tensor.js';
import { memorySize } from '../train/data.js';
import { features, forEachFeatureBatch, lastHiddenBlob, type Neighbour, NearestNeighbours } from '../train/features.js';
import { neighboursPng, type Thumbnail } from './plots.js';

export interface NeighbourSearch {
  /** The blob searched (default: the last hidden layer). */
  layer: string;
  /** Each query's nearest training images, nearest first. */
  neighbours: Neighbour[][];
}

/** Each query's `count` nearest images of `database` in the net's `layer` (default: the last hidden
 * one), the database's features computed a batch at a time (a 60,000-image set is never held whole). */
export async function searchNeighbours(
  net: Net,
  database: BatchSource,
  queries: BatchSource,
  o: { layer?: string; count?: number } = {},
): Promise<NeighbourSearch> {
  const layer = o.layer ?? lastHiddenBlob(net);
  const query = await features(net, layer, queries);
  const search = new NearestNeighbours(query.rows, query.width, o.count ?? 5);
  await forEachFeatureBatch(net, layer, database, (from, rows) => search.add(rows, from));
  return { layer, neighbours: search.result() };
}

/** The same search on raw pixel values, the paper's contrast ("not close in L2"). */
export function searchPixels(train: ImageSet, queries: ImageSet, count = 5): NeighbourSearch {
  const width = sizeOf(queries.shape);
  const search = new NearestNeighbours(Float32Array.from(queries.pixels), width, count);
  const block = 1000;
  for (let from = 0; from < imageCount(train); from += block) {
    const to = Math.min(imageCount(train), from + block);
    search.add(Float32Array.from(train.pixels.subarray(from * width, to * width)), from);
  }
  return { layer: 'pixels', neighbours: search.result() };
}

/** The share of neighbours whose label is their query's. */
export function labelAgreement(found: Neighbour[][], databaseLabels: ArrayLike<number>, queryLabels: ArrayLike<number>): number {
  const hits = found.reduce((a, ns, q) => a + ns.filter((n) => databaseLabels[n.index] === queryLabels[q]).length, 0);
  return (
    hits /
    Math.max(
      1,
      found.reduce((a, ns) => a + ns.length, 0),
    )
  );
}

/** Images for a figure: their inputs, and each one's picture, class and caption. */
export interface FigureImages {
  inputs: BatchSource;
  thumbnail(i: number): Thumbnail;
  /** The true class, when known. */
  label?(i: number): number;
}

/** The figure: each query with the model's top five classes (the true one marked, when known) and
 * its nearest database images, searched for here. */
export async function neighboursFigure(
  net: Net,
  database: FigureImages,
  queries: FigureImages,
  o: { layer?: string; count?: number; classNames?: string[]; title?: string },
): Promise<{ png: Buffer; search: NeighbourSearch }> {
  const search = await searchNeighbours(net, database.inputs, queries.inputs, o);
  return { png: await drawNeighbours(net, database, queries, search, o), search };
}

/** The figure of a search already made: `search.neighbours[q]` are query q's. */
export async function drawNeighbours(
  net: Net,
  database: FigureImages,
  queries: FigureImages,
  search: NeighbourSearch,
  o: { classNames?: string[]; title?: string },
): Promise<Buffer> {
  const { classes, logits } = netRoles(net);
  const scores = await features(net, logits, queries.inputs);
  const p = softmaxRows(scores.rows, queries.inputs.count, classes, new Float64Array(queries.inputs.count * classes));
  const name = (label: number) => o.classNames?.[label] ?? `class ${label}`;
  const rows = search.neighbours.map((found, q) => ({
    query: queries.thumbnail(q),
    top: Array.from({ length: classes }, (_, c) => ({ label: c, probability: p[q * classes + c]! }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, 5)
      .map(({ label, probability }) => ({ label: name(label), probability, correct: label === queries.label?.(q) })),
    neighbours: found.map((n) => database.thumbnail(n.index)),
  }));
  return neighboursPng(rows, o.title ?? `The ${search.neighbours[0]?.length ?? 0} training images nearest in ${search.layer}`);
}

/** A dataset's images for a figure, normalised as (x/255 − mean)/std. */
export function datasetImages(set: ImageSet, mean: number, std: number, classNames?: string[]): FigureImages {
  const name = (label: number) => classNames?.[label] ?? set.classNames?.[label] ?? `class ${label}`;
  return {
    inputs: imageSetBatches(set, mean, std, { pad: 0, flip: false }),
    thumbnail: (i) => ({ pixels: set.pixels, shape: set.shape, index: i, caption: name(set.labels[i]!) }),
    label: (i) => set.labels[i]!,
  };
}

/**
 * `alexnet neighbours`: the figure for query images under an opened model, with its own
 * preprocessing. On a dataset folder (IDX or CIFAR) the queries are test images by index and its
 * training images are searched; on a photo store or folder, the queries are image files and the
 * store's (or folder's) training images are searched, each as its centre crop.
 */
export async function modelNeighbours(
  model: OpenedModel,
  data: string,
  queries: (number | string)[],
  o: { layer?: string; count?: number } = {},
): Promise<{ png: Buffer; search: NeighbourSearch }> {
  const [channels, height, width] = model.net.shapeOf(model.data).slice(1) as [number, number, number];
  const photos = isStore(data) || isPhotoFolder(data);
  if (!photos) {
    const { train, test } = loadDataset(data, { classes: model.classes });
    if (train.shape.join() !== [channels, height, width].join())
      throw new Error(`${model.path} takes ${channels}×${height}×${width} images, ${data} holds ${train.shape.join('×')}`);
    const shown = queries.map((q) => {
      if (typeof q !== 'number' || !Number.isInteger(q) || q < 0 || q >= imageCount(test))
        throw new Error(`image ${q} is not in ${test.source} (0 to ${imageCount(test) - 1})`);
      return q;
    });
    const { mean, std } = uniformNormalisation(model.preprocess ?? { channels: 'rgb', mean: [0], std: [1] }, model.path);
    const names = model.classNames ?? train.classNames;
    return neighboursFigure(
      model.net,
      datasetImages(train, mean, std, names),
      datasetImages(subset(test, shown, test.source), mean, std, names),
      {
        ...o,
        ...(names ? { classNames: names } : {}),
      },
    );
  }
  const preprocess = model.preprocess;
  if (!preprocess) throw new Error(`${model.path} does not record how its images were preprocessed: pass --preprocess`);
  const files = queries.map((q) => {
    if (typeof q !== 'string') throw new Error(`${data} holds photos: give image files, not test-image indices (${q})`);
    return q;
  });
  const reader = await trainRecords(data, preprocess.resize ?? memorySize(height));
  try {
    const names = model.classNames ?? reader.index.classNames;
    return await neighboursFigure(
      model.net,
      storeImages(reader, width, preprocess),
      await fileImages(files, [channels, height, width], preprocess),
      {
        ...o,
        ...(names ? { classNames: names } : {}),
      },
    );
  } finally {
    reader.close();
  }
}

/** A store's training split, or a folder of photos decoded in memory at `size`. */
async function trainRecords(data: string, size: number): Promise<RecordReader> {
  if (isStore(data)) return new StoreReader(data, openStore(data), 'train');
  const readers = await prepareInMemory(data, { size });
  if (!readers.train) throw new Error(`${data} holds no training photos`);
  return readers.train;
}

function storeImages(reader: RecordReader, crop: number, preprocess: Preprocess): FigureImages {
  const { size, classIds, classNames } = reader.index;
  const name = (label: number) => classNames?.[label] ?? classIds[label] ?? `class ${label}`;
  return {
    inputs: storeBatches(reader, crop, preprocess, { crop: false, flip: false, pca: 0 }),
    thumbnail: (i) => {
      const pixels = new Uint8Array(3 * size * size);
      const label = reader.read(i, pixels);
      return { pixels, shape: [3, size, size], index: 0, caption: name(label) };
    },
  };
}

/** Image files as the model sees them: decoded and cropped as `preprocess` says; shown as cropped. */
async function fileImages(files: string[], shape: [number, number, number], preprocess: Preprocess): Promise<FigureImages> {
  const inputs = await loadImageFiles(files, shape, preprocess);
  const shown = await loadImageFiles(files, shape, { ...preprocess, channels: 'rgb', mean: [0], std: [1 / 255] });
  const size = sizeOf(shape);
  return {
    inputs: {
      count: files.length,
      classes: 0,
      shape,
      source: files.length === 1 ? files[0]! : `${files.length} image files`,
      fill(order, from, to, x) {
        for (let b = 0; b < to - from; b++) x.set(inputs.subarray(order[from + b]! * size, (order[from + b]! + 1) * size), b * size);
      },
    },
    thumbnail: (i) => ({
      pixels: Uint8Array.from(shown.subarray(i * size, (i + 1) * size), (v) => Math.max(0, Math.min(255, Math.round(v)))),
      shape,
      index: 0,
      caption: basename(files[i]!),
    }),
  };
}
