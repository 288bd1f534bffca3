/**
 * The reproduction on photos (`--photos`): the paper's net at its own input size on a prepared
 * store or a folder of photos (decoded in memory once), where the claims about colour and the
 * paper's test patches can be tested as the paper stated them — PCA colour noise, random crops and
 * flips, the ten patches, and the colour of each column's first-layer kernels.
 */
import { storeBatches, storePreprocess } from '../data/batches.js';
import { isStore, openStore, prepareInMemory, type RecordReader, StoreReader } from '../data/store.js';
import { Net } from '../net/net.js';
import { evaluate, evaluateStore } from '../train/evaluate.js';
import type { Arm } from './arms.js';
import { errorRates, type RunContext, type RunResult, trainArm } from './reproduce.js';

/** A store's (or a folder's) train and val splits, opened once for every arm. */
export interface PhotoSet {
  name: 'photos';
  title: string;
  train: RecordReader;
  test: RecordReader;
  classes: number;
  classNames?: string[];
  close(): void;
}

/** The input side of the paper's net (its crops of the 256-pixel photos). */
const CROP = 224;

export async function openPhotos(dir: string): Promise<PhotoSet> {
  const index = isStore(dir) ? openStore(dir) : undefined;
  const readers: Partial<Record<string, RecordReader>> = index
    ? Object.fromEntries(Object.keys(index.splits).map((split) => [split, new StoreReader(dir, index, split)]))
    : await prepareInMemory(dir, { size: 256 });
  const { train, val } = readers;
  if (!train || !val) {
    for (const reader of Object.values(readers)) reader?.close();
    throw new Error(
      `--photos ${dir}: the reproduction trains on its train split and tests on its val split; it has ${Object.keys(readers).join(', ')}`,
    );
  }
  if (train.index.size < CROP) throw new Error(`--photos ${dir}: its photos are ${train.index.size} pixels; the paper's net crops ${CROP}`);
  return {
    name: 'photos',
    title: `photos of ${dir} (${train.count} training, ${val.count} test, ${train.index.classIds.length} classes)`,
    train,
    test: val,
    classes: train.index.classIds.length,
    ...(train.index.classNames ? { classNames: train.index.classNames } : {}),
    close: () => {
      train.close();
      val.close();
    },
  };
}

/** One arm at one seed on photos: normalised by the store's RGB statistics, scored on the val split
 * with the centre crop (and the ten patches), and on the training photos' centre crops. */
export function runPhotoArm(ctx: RunContext, p: PhotoSet, arm: Arm, seed: number): Promise<RunResult | undefined> {
  const s = arm.settings;
  const preprocess = storePreprocess(p.train);
  const plain = { crop: false, flip: false, pca: 0 };
  return trainArm(ctx, p.name, arm, seed, () => ({
    classes: p.classes,
    train: storeBatches(p.train, CROP, preprocess, { crop: s.randomCrops ?? true, flip: s.flip, pca: s.pca ?? 0 }),
    validation: storeBatches(p.test, CROP, preprocess, plain),
    record: {
      augment: { pad: 0, crop: s.randomCrops ?? true, flip: s.flip, pca: s.pca ?? 0 },
      mean: preprocess.mean[0]!,
      std: preprocess.std[0]!,
      preprocess,
      ...(p.classNames ? { classNames: p.classNames } : {}),
    },
    score: async (net) => {
      const train = errorRates(await evaluate(net, storeBatches(p.train, CROP, preprocess, plain)));
      // the ten patches need a batch of whole images' crops
      const params = await net.readParams();
      const weights = Object.fromEntries(net.params.map((q) => [q.name, { shape: q.shape, data: params[q.name]! }]));
      const tens = Net.build(net.spec, { backend: ctx.backend, batch: 10, inference: true, weights });
      try {
        const centre = await evaluateStore(tens, p.test, preprocess, { crops: 'center' });
        const ten = await evaluateStore(tens, p.test, preprocess, { crops: 'ten' });
        return { train, test: errorRates(centre), ...(arm.tenPatch ? { tenPatch: errorRates(ten) } : {}) };
      } finally {
        tens.dispose();
      }
    },
  }));
}
