/**
 * `eval`'s work as a library function: a model scored on a dataset's test split (IDX, CIFAR), or
 * on a prepared store's or a photo folder's val split (its train split without one), with the
 * centre crop or the paper's ten patches. An accuracy comes only with a finite loss.
 */
import { imageSetBatches } from '../data/batches.js';
import { isPhotoFolder, loadSplit } from '../data/dataset.js';
import { uniformNormalisation } from '../data/preprocess.js';
import { isStore, openStore, prepareInMemory, type RecordReader, StoreReader } from '../data/store.js';
import type { OpenedModel } from '../models/open.js';
import { memorySize } from './data.js';
import { evaluate, evaluateStore, type EvalResult } from './evaluate.js';

export interface ScoreOptions {
  /** Photos: the centre crop, or the paper's ten patches (corners and centre, reflected). */
  crops?: 'center' | 'ten';
  /** Datasets: each image's softmax averaged with its mirror image's. */
  mirror?: boolean;
  /** Photos: images scored so far (and decoded, for a folder decoded in memory). */
  onProgress?: (done: number, total: number) => void;
}

/** Whether `data` holds photos (a store or a folder) rather than a dataset's images. */
export function holdsPhotos(data: string): boolean {
  return isStore(data) || isPhotoFolder(data);
}

/** The batch a model scoring `data` is built for: whole images' crops on photos (16 images by
 * default), 100 images of a dataset. */
export function scoringBatch(data: string, o: { batch?: number; crops?: 'center' | 'ten' }): number {
  return holdsPhotos(data) ? (o.batch ?? 16) * (o.crops === 'ten' ? 10 : 1) : (o.batch ?? 100);
}

export async function scoreModel(model: OpenedModel, data: string, o: ScoreOptions = {}): Promise<EvalResult> {
  const result = holdsPhotos(data) ? await scorePhotos(model, data, o) : await scoreDataset(model, data, o);
  checkFiniteLoss(result, data);
  return result;
}

/** An accuracy means nothing beside a loss that is not a number: the net's outputs are not. */
export function checkFiniteLoss(result: EvalResult, source: string): void {
  if (!Number.isFinite(result.loss))
    throw new Error(`the loss on ${source} is ${result.loss}: the model's outputs are not finite numbers, so it has no accuracy`);
}

async function scorePhotos(model: OpenedModel, data: string, o: ScoreOptions): Promise<EvalResult> {
  if (!model.preprocess) throw new Error(`${model.path} does not record how its images were preprocessed: pass --preprocess`);
  const reader = await photoRecords(data, model.preprocess.resize ?? memorySize(model.net.shapeOf(model.data)[2]!), o);
  try {
    return await evaluateStore(model.net, reader, model.preprocess, {
      crops: o.crops ?? 'center',
      ...(o.onProgress ? { onProgress: (done: number) => o.onProgress!(done, reader.count) } : {}),
    });
  } finally {
    reader.close();
  }
}

/** The split scored (val, else train) of a store, or of a small folder of photos decoded into
 * memory at `size` (the model's crops are cut from it). */
async function photoRecords(data: string, size: number, o: ScoreOptions): Promise<RecordReader> {
  if (isStore(data)) {
    const index = openStore(data);
    return new StoreReader(data, index, index.splits.val ? 'val' : 'train');
  }
  const readers = await prepareInMemory(data, { size, ...(o.onProgress ? { onProgress: (p) => o.onProgress!(p.done, p.total) } : {}) });
  return readers.val ?? readers.train!;
}

async function scoreDataset(model: OpenedModel, data: string, o: ScoreOptions): Promise<EvalResult> {
  const { net, path } = model;
  const test = loadSplit(data, 'test', { classes: model.classes });
  const [channels, height, width] = net.shapeOf(model.data).slice(1);
  if (channels !== test.shape[0] || height !== test.shape[1] || width !== test.shape[2])
    throw new Error(`${path}: the model takes ${channels}×${height}×${width} images, ${test.source} holds ${test.shape.join('×')}`);
  const { mean, std } = uniformNormalisation(model.preprocess ?? { channels: 'rgb', mean: [0], std: [1] }, path);
  return evaluate(net, imageSetBatches(test, mean, std, { pad: 0, flip: false }), { mirror: o.mirror });
}
