/**
 * Training recipes: every setting a run needs, as a net trains well with them. Each zoo net names
 * its recipe; a fine-tuning run (`--init-from`) takes `fine-tune`; settings given by the user win.
 *
 * The learning rate belongs to the recipe's batch size. At another batch, a rate the user did not
 * give is scaled in proportion (the linear scaling rule of Goyal et al., "Accurate, Large Minibatch
 * SGD", 2017): the paper's ε = 0.01 at batch 128 is 0.000625 at batch 8. Unscaled, the paper's rate
 * at batch 8 diverges here and in PyTorch alike (mean loss 28 over the first epoch of 52 photos).
 */
import { isPhotoFolder } from '../data/dataset.js';
import { isStore } from '../data/store.js';
import { models } from '../models/index.js';
import type { ScheduleSpec } from './schedule.js';

export interface TrainingSettings {
  epochs: number;
  batch: number;
  /** The peak learning rate ε, at `batch`. */
  lr: number;
  momentum: number;
  weightDecay: number;
  /** As `--schedule` takes it: plateau[:patience[:maxDrops]] | steps:E1,E2 | linear[:warmup] | constant;
   * or as a run recorded it, parsed. */
  schedule: string | ScheduleSpec;
  init: string;
  /** Small images: random crops from the image padded by this many pixels. */
  cropPad: number;
  flip: boolean;
  /** Stores: the PCA colour noise's σ. */
  pca: number;
}

export interface Recipe {
  describe: string;
  settings: TrainingSettings;
}

/** Section 5 of the paper: batch 128, momentum 0.9, weight decay 0.0005, ε = 0.01 divided by 10
 * when the validation error stops improving (at most three times), ~90 epochs, random crops and
 * reflections, PCA colour noise σ = 0.1. */
const PAPER: TrainingSettings = {
  epochs: 90,
  batch: 128,
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 0.0005,
  schedule: 'plateau:1:3',
  init: 'paper',
  cropPad: 0,
  flip: true,
  pca: 0.1,
};

/** Every setting a recipe fills, by the name the CLI's options and `TrainRequest` share. */
export const SETTING_NAMES = Object.keys(PAPER) as (keyof TrainingSettings)[];

const FINE_TUNE: TrainingSettings = {
  epochs: 20,
  batch: 50,
  lr: 0.001,
  momentum: 0.9,
  weightDecay: 0.0005,
  schedule: 'steps:50%',
  init: 'pytorch',
  cropPad: 0,
  flip: true,
  pca: 0.1,
};

export const recipes: Record<string, Recipe> = {
  paper: {
    describe: 'Krizhevsky et al. (2012), section 5, weights N(0, 0.01) and biases 1 included',
    settings: PAPER,
  },
  // The paper's N(0, 0.01) weights stay at chance on a small photo set: 52 photos of 4 classes,
  // batch 8, 5 epochs at ε 0.0001–0.000625 ended at loss 2.0–12 (ln 4 = 1.39); He's initialisation
  // at 0.000625 reached 0.19 (BENCHMARKS.md, "Recipes").
  alexnet: {
    describe: "the paper's settings with He's initialisation, which starts training at any batch size",
    settings: { ...PAPER, init: 'kaiming' },
  },
  // torchvision's reference training of its AlexNet (references/classification): 8 GPUs × 32
  // images, ε 0.01, weight decay 0.0001, ÷10 every 30 epochs, no colour noise. Its initialisation
  // (PyTorch's default) stayed at ln 4 on the same photos; He's reached 0.77 after 5 epochs.
  torchvision: {
    describe: "torchvision's reference training of its AlexNet, with He's initialisation",
    settings: { ...PAPER, batch: 256, weightDecay: 0.0001, schedule: 'steps:30,60', init: 'kaiming', pca: 0 },
  },
  scaled: {
    describe: 'the scaled AlexNets on 28×28 and 32×32 images: 93 % on Fashion-MNIST in 20 epochs',
    settings: {
      epochs: 10,
      batch: 64,
      lr: 0.05,
      momentum: 0.9,
      weightDecay: 0.0005,
      schedule: 'linear:0.3',
      init: 'kaiming',
      cropPad: 0,
      flip: true,
      pca: 0.1,
    },
  },
  // Caffe's fine-tuning of bvlc_alexnet (examples/finetune_flickr_style): ε 0.001 at batch 50,
  // momentum 0.9, weight decay 0.0005, ÷10 once; the new classifier drawn as nn.Linear draws it.
  // (Caffe's 10× rate for the new classifier, as the run's rate with the other layers frozen,
  // took the loss of a classifier on frozen torchvision-layout features from 0.03 to 3.4 in 3 epochs.)
  'fine-tune': {
    describe: "fine-tuning a trained net (--init-from): Caffe's fine-tuning settings",
    settings: FINE_TUNE,
  },
};

/** The recipe of a run that names none: fine-tuning's, else the zoo net's (the scaled nets' for
 * a spec file), else that of the net the data trains by default (the paper's net for photos). */
export function defaultRecipe(o: { model?: string; initFrom?: string; data: string }): string {
  if (o.initFrom !== undefined) return 'fine-tune';
  if (o.model !== undefined) return models[o.model]?.recipe ?? 'scaled';
  return isStore(o.data) || isPhotoFolder(o.data) ? models.alexnet!.recipe : 'scaled';
}

export interface ResolvedSettings {
  recipe: string;
  settings: TrainingSettings;
  /** What the user did not give, in the words the first line of a run prints. */
  described: string;
}

/**
 * The settings of a run: the user's where given, else the recipe's, with the learning rate scaled
 * to the batch. Without a given batch, one larger than a quarter of the training set (when known)
 * becomes the largest power of two within it, so an epoch has at least four steps.
 */
export function resolveSettings(name: string, given: Partial<TrainingSettings>, trainImages?: number): ResolvedSettings {
  const recipe = recipes[name];
  if (!recipe) throw new Error(`unknown recipe '${name}' (known: ${Object.keys(recipes).join(', ')})`);
  const base = recipe.settings;
  let batch = given.batch ?? base.batch;
  const fitted = given.batch === undefined && trainImages !== undefined && batch > trainImages / 4;
  if (fitted) batch = 2 ** Math.floor(Math.log2(Math.max(1, trainImages / 4)));
  const lr = given.lr ?? (base.lr * batch) / base.batch;
  const settings = { ...base, ...given, batch, lr };
  const notes = SETTING_NAMES.filter((key) => given[key] === undefined).map((key) => {
    if (key === 'lr' && batch !== base.batch) return `lr ${formatNumber(lr)} (${formatNumber(base.lr)} × ${batch}/${base.batch})`;
    if (key === 'batch' && fitted) return `batch ${batch} (a quarter of ${trainImages} training images at most)`;
    const value = settings[key];
    return `${key} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`;
  });
  return {
    recipe: name,
    settings,
    described: notes.length > 0 ? `recipe ${name}: ${notes.join(', ')}` : `recipe ${name}: all settings given`,
  };
}

/** A number for people: 3 significant digits, exponent form for small and large magnitudes (6.0e-6). */
export function formatNumber(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const magnitude = Math.abs(x);
  if (magnitude >= 1e-3 && magnitude < 1e5) return String(Number(x.toPrecision(3)));
  return x
    .toExponential(2)
    .replace(/\.?0+e/, 'e')
    .replace(/^(-?\d)e/, '$1.0e');
}
