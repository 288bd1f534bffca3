/**
 * A training run's data from a folder: an in-memory IDX/CIFAR set, a prepared photo store, or a
 * small folder of photos decoded into memory as `prepare` would store it. Each
 * become batch sources for training (augmented), validation (the store's or folder's own val
 * split, else held-out training images) and the final test (the dataset's test split, or the
 * store's val split), with the settings to record.
 */
import { type BatchSource, imageSetBatches, storeBatches, storePreprocess } from '../data/batches.js';
import { imageCount, type ImageSet, isPhotoFolder, loadDataset, pixelStatistics, splitValidation } from '../data/dataset.js';
import type { PhotoDataset } from '../data/photos.js';
import type { Preprocess } from '../data/preprocess.js';
import { prefetchingStoreBatches } from '../data/loader.js';
import { isStore, openStore, prepareInMemory, type RecordReader, type StoreIndex, StoreReader } from '../data/store.js';
import type { RunOptions } from './run-options.js';
import { shuffled, streams } from '../random.js';

export interface TrainingData {
  train: BatchSource;
  validation: BatchSource;
  test: BatchSource;
  classes: number;
  classNames?: string[];
  /** What the run records: the augmentation and the normalisation the sources apply. */
  augment: RunOptions['augment'];
  mean: number;
  std: number;
  preprocess?: Preprocess;
  /** Where the validation images come from, for people: "5000 training images held out (10 %)". */
  validationFrom: string;
  /** Validation is the dataset's own val split (which is then the test set too). */
  validationSplit: boolean;
  close(): void | Promise<void>;
}

export interface DataOptions {
  /** Training images held out for validation, chosen by the seed. Without it: the store's or
   * folder's own val split where there is one, else `defaultHoldOut` of the training images. */
  val?: number;
  seed: number;
  classes?: number;
  classNames?: string[];
  /** Small images: crops from the image padded by this many pixels. */
  cropPad: number;
  flip: boolean;
  /** Stores: the PCA colour noise's σ (the paper's 0.1). */
  pca: number;
  /** Stores: random crops of the input size (default), or the centre crop alone. */
  randomCrops?: boolean;
  /** Stores: the side of the model's input. */
  inputSize?: number;
  /** The normalisation to use rather than the training set's (a fine-tuned model's own). */
  normalisation?: { mean: number; std: number };
  /** Stores: the normalisation of a fine-tuned model's own photos (its channel order, mean and
   * deviation), rather than the store's RGB statistics. */
  preprocess?: Preprocess;
  /** Stores: threads assembling training batches ahead of the loop (0: on the loop's thread). */
  loaders?: number;
  /** The folder of photos as `listPhotos` read it already, to be decoded in memory. */
  photos?: PhotoDataset;
  /** Photos decoded in memory: how far that has got. */
  onProgress?: (p: { done: number; total: number; skipped: number; imagesPerSecond: number }) => void;
}

/** The store's index and class count, before the model (and so the crop size) is known. */
export function storeOf(dir: string): StoreIndex | undefined {
  return isStore(dir) ? openStore(dir) : undefined;
}

/** The side photos decoded in memory are stored at: the paper's 256 for a 224 input, in proportion. */
export function memorySize(inputSize: number): number {
  return Math.max(inputSize, Math.round((inputSize * 256) / 224));
}

/** A tenth of the training images, at most 5,000 (Fashion-MNIST's and CIFAR's usual hold-out). */
export function defaultHoldOut(trainImages: number): number {
  return Math.max(1, Math.min(5000, Math.round(trainImages / 10)));
}

function heldOutFrom(count: number, given: number | undefined, total: number): string {
  return `${count} training images held out${given === undefined ? ` (${Math.round((100 * count) / total)} %)` : ''}`;
}

export async function openTrainingData(dir: string, o: DataOptions): Promise<TrainingData> {
  const index = storeOf(dir);
  if (index) {
    const val = index.splits.val ? new StoreReader(dir, index, 'val') : undefined;
    return recordData(new StoreReader(dir, index, 'train'), val, o);
  }
  if (o.photos ?? isPhotoFolder(dir)) {
    const size = o.preprocess?.resize ?? memorySize(o.inputSize ?? 224);
    const readers = await prepareInMemory(dir, { size, onProgress: o.onProgress, ...(o.photos ? { dataset: o.photos } : {}) });
    if (!readers.train) throw new Error(`${dir} has no training images (a train/ folder, or class folders)`);
    return recordData(readers.train, readers.val, { ...o, loaders: 0 });
  }
  return imageSetData(loadDataset(dir, { classes: o.classes, classNames: o.classNames }), o);
}

/** In-memory sets (IDX, CIFAR; a page's files): `val` training images held out for validation
 * (chosen by the seed), normalised by the training images' statistics unless told otherwise. */
export function imageSetData({ train: all, test }: { train: ImageSet; test: ImageSet }, o: DataOptions): TrainingData {
  const val = o.val ?? defaultHoldOut(imageCount(all));
  const { train, validation } = splitValidation(all, val, o.seed);
  const { mean, std } = o.normalisation ?? pixelStatistics(train);
  const augment = { pad: o.cropPad, flip: o.flip };
  const plain = { pad: 0, flip: false };
  return {
    train: imageSetBatches(train, mean, std, augment),
    validation: imageSetBatches(validation, mean, std, plain),
    test: imageSetBatches(test, mean, std, plain),
    classes: all.classes,
    ...(all.classNames ? { classNames: all.classNames } : {}),
    augment,
    mean,
    std,
    validationFrom: heldOutFrom(val, o.val, imageCount(all)),
    validationSplit: false,
    close: () => {},
  };
}

/** A store's (or photos decoded in memory) training split; validation is its val split, or `val`
 * held-out training images; the val split is the test set (the held-out images without one). */
function recordData(train: RecordReader, test: RecordReader | undefined, o: DataOptions): TrainingData {
  const { index } = train;
  const crop = o.inputSize ?? index.size;
  const useSplit = o.val === undefined && test !== undefined;
  const val = useSplit ? 0 : (o.val ?? defaultHoldOut(train.count));
  if (val >= train.count)
    throw new Error(`holding out ${val} images for validation leaves none to train on (the store has ${train.count})`);
  const order = shuffled(train.count, o.seed, streams.validationSplit);
  const preprocess = o.preprocess ? { ...o.preprocess, resize: index.size } : storePreprocess(train);
  const augment = { pad: 0, crop: o.randomCrops ?? true, flip: o.flip, pca: o.pca };
  const plain = { crop: false, flip: false, pca: 0 };
  const loaders = train.dir === undefined ? 0 : (o.loaders ?? 1);
  const all =
    loaders > 0
      ? prefetchingStoreBatches(
          train,
          { dir: train.dir!, split: 'train', crop, preprocess, augment },
          { workers: loaders, depth: 2 * loaders },
        )
      : storeBatches(train, crop, preprocess, augment);
  const centre = storeBatches(train, crop, preprocess, plain);
  const heldOut = indexed(centre, order.subarray(0, val), `${centre.source} (validation)`);
  const testSet = test ? storeBatches(test, crop, preprocess, plain) : heldOut;
  return {
    train: indexed(all, order.subarray(val), all.source),
    validation: useSplit ? testSet : heldOut,
    test: testSet,
    classes: index.classIds.length,
    classNames: index.classNames,
    augment,
    mean: preprocess.mean[0]!,
    std: preprocess.std[0]!,
    preprocess,
    validationFrom: useSplit ? `the val split's ${test!.count} images` : heldOutFrom(val, o.val, train.count),
    validationSplit: useSplit,
    close: async () => {
      await all.close?.();
      train.close();
      test?.close();
    },
  };
}

/** The images of `source` at `indices`, as a source of their own (an epoch's order mapped once,
 * whole, so a prefetching source sees the batches ahead). */
function indexed(source: BatchSource, indices: Uint32Array, name: string): BatchSource {
  let order: Uint32Array | undefined,
    mapped = new Uint32Array(0);
  return {
    ...source,
    count: indices.length,
    source: name,
    fill(epochOrder, from, to, x, y, augmentation) {
      if (epochOrder !== order) [order, mapped] = [epochOrder, epochOrder.map((i) => indices[i]!)];
      return source.fill(mapped, from, to, x, y, augmentation);
    },
  };
}
