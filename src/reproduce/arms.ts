/**
 * The arms of the reproduction: each a net and its training settings, one change away from the
 * reference arm (the scaled AlexNet with all of the paper's features), so that each of the paper's
 * claims is a comparison of two arms trained on the same images with the same seeds.
 */
import { alexnet, alexnetSmall } from '../models/alexnet.js';
import { replaceClasses } from '../net/roles.js';
import type { LayerSpec, NetSpec } from '../net/spec.js';
import { recipes, resolveSettings } from '../train/recipes.js';

/** How much a reproduction trains: the images it trains on, and for how long. */
export interface Scale {
  /** Training images (a fixed subset, the same for every arm: small enough to overfit). */
  trainImages: number;
  /** Held out of the training set, for the epochs' validation. */
  validationImages: number;
  /** Of the dataset's test set. */
  testImages: number;
  epochs: number;
  /** Figure 1's runs, unregularised. */
  curveEpochs: number;
  /** Figure 1's learning-rate sweep, each activation on the first seed. */
  curveRates: number[];
  /** Section 5's bias runs: the loss over their first epochs. */
  biasEpochs: number;
  seeds: number;
  /** Test images whose nearest neighbours (Figure 4) are counted. */
  neighbourQueries: number;
}

/** Sized for about an hour and a half on a 2-vCPU machine with Fashion-MNIST alone. */
export const FULL: Scale = {
  trainImages: 10_000,
  validationImages: 5_000,
  testImages: 10_000,
  epochs: 15,
  curveEpochs: 12,
  curveRates: [0.005, 0.01, 0.02, 0.05],
  biasEpochs: 2,
  seeds: 3,
  neighbourQueries: 1_000,
};

/** Every experiment end to end in minutes. */
export const QUICK: Scale = {
  trainImages: 2_000,
  validationImages: 1_000,
  testImages: 2_000,
  epochs: 3,
  curveEpochs: 3,
  curveRates: [0.01, 0.05],
  biasEpochs: 1,
  seeds: 1,
  neighbourQueries: 200,
};

export interface ArmSettings {
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: string;
  init: string;
  /** Random crops from the image padded by this many pixels, and horizontal flips. */
  cropPad: number;
  flip: boolean;
  /** The paper's PCA colour noise's σ (colour images only; none when absent). */
  pca?: number;
  /** Photos: random crops of the input size (else the centre crop). */
  randomCrops?: boolean;
  /** 'unit': (x/255 − mean)/std as every other run; 'pixels': x − 255·mean, the paper's scale of
   * input values (raw pixel values less the mean), which its N(0, 0.01) weights were drawn for. */
  inputs: 'unit' | 'pixels';
}

export interface Arm {
  name: string;
  describe: string;
  spec: NetSpec;
  settings: ArmSettings;
  /** Also scored with the paper's ten test patches. */
  tenPatch?: boolean;
  /** Keeps each step's loss (the early stages of learning). */
  trace?: boolean;
}

export interface DataShape {
  shape: [number, number, number];
  classes: number;
}

/** The reference arm's recipe: the scaled nets' own (recipes.ts) with crops of the image padded by
 * 2 pixels, and their epochs; its colour noise on colour images. */
function reference(data: DataShape, scale: Scale): ArmSettings {
  const { epochs: _, schedule, pca, ...scaled } = recipes.scaled!.settings;
  return {
    ...scaled,
    epochs: scale.epochs,
    schedule: String(schedule),
    cropPad: 2,
    ...(data.shape[0] === 3 ? { pca } : {}),
    inputs: 'unit',
  };
}

const mapLayers = (spec: NetSpec, name: string, change: (l: LayerSpec) => LayerSpec | undefined): NetSpec => ({
  ...spec,
  name: `${spec.name}-${name}`,
  layers: spec.layers.flatMap((l) => change(l) ?? []),
});

function smallNet(data: DataShape, dropout = 0.5, widths?: [number, number, number, number, number, number]): NetSpec {
  const [channels, size] = data.shape;
  if (size !== 28 && size !== 32) throw new Error(`the reproduction trains 28×28 or 32×32 images, not ${size}×${size}`);
  return alexnetSmall({ inputSize: size, channels, classes: data.classes, dropout, ...(widths ? { widths } : {}) });
}

/** The paper's Figure 1 net: four layers with weights (three convolutions and the classifier),
 * max-pooling, and `activation` after each convolution; no normalisation, no dropout. */
export function fourLayerNet(data: DataShape, activation: 'relu' | 'tanh'): NetSpec {
  const layers: LayerSpec[] = [];
  for (const [i, [channels, kernel]] of [
    [32, 5],
    [64, 5],
    [64, 3],
  ].entries()) {
    layers.push(
      { name: `conv${i + 1}`, type: 'conv2d', outChannels: channels!, kernel: kernel!, pad: (kernel! - 1) / 2 },
      { name: `${activation}${i + 1}`, type: activation },
      { name: `pool${i + 1}`, type: 'maxpool2d', kernel: 3, stride: 2, ceil: true },
    );
  }
  layers.push(
    { name: 'fc4', type: 'linear', outFeatures: data.classes },
    { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc4', 'label'] },
  );
  return { name: `four-layer-${activation}`, inputs: { data: data.shape, label: [] }, layers };
}

/** The arms of the ablations (sections 3.2–4.2), with the reference arm first. */
export function ablationArms(data: DataShape, scale: Scale): Arm[] {
  const settings = reference(data, scale);
  const base = smallNet(data);
  const [c1, c2, c3, c4, c5, fc] = [32, 64, 64, 64, 64, 512];
  return [
    {
      name: 'reference',
      describe: `the scaled AlexNet: ReLU, LRN, overlapping pools, dropout 0.5, two columns, crops and flips${settings.pca ? ', colour noise' : ''}`,
      spec: base,
      settings,
      tenPatch: true,
    },
    {
      name: 'no-lrn',
      describe: 'without its two LRN layers',
      spec: mapLayers(base, 'no-lrn', (l) => (l.type === 'lrn' ? undefined : l)),
      settings,
    },
    {
      name: 'pool-2x2',
      describe: 'pools of 2×2 with stride 2 (not overlapping) in place of 3×3 with stride 2',
      spec: mapLayers(base, 'pool-2x2', (l) => (l.type === 'maxpool2d' ? { ...l, kernel: 2, stride: 2, ceil: false } : l)),
      settings,
    },
    { name: 'no-dropout', describe: 'without dropout', spec: smallNet(data, 0), settings },
    {
      name: 'no-augmentation',
      describe: 'trained on the images as they are: no crops, no flips',
      spec: base,
      settings: { ...settings, cropPad: 0, flip: false },
      tenPatch: true,
    },
    ...(settings.pca
      ? [{ name: 'no-pca', describe: 'without the PCA colour noise', spec: base, settings: { ...settings, pca: undefined } }]
      : []),
    {
      name: 'one-column-half',
      describe: "one column with half the kernels of conv1–conv4 (conv5 and the fully connected layers kept, as the paper's one-GPU net)",
      spec: mapLayers(smallNet(data, 0.5, [c1 / 2, c2 / 2, c3 / 2, c4 / 2, c5, fc]), 'one-column-half', ungrouped),
      settings,
    },
    {
      name: 'one-column-full',
      describe: 'one column with every kernel: each convolution sees all of its input channels',
      spec: mapLayers(base, 'one-column-full', ungrouped),
      settings,
    },
  ];
}

function ungrouped(l: LayerSpec): LayerSpec {
  if (l.type !== 'conv2d') return l;
  const { groups: _, ...rest } = l;
  return rest;
}

/** Figure 1's arms at one learning rate: ReLU and tanh, unregularised, at a constant rate. */
export function curveArms(data: DataShape, scale: Scale, lr: number): Arm[] {
  return (['relu', 'tanh'] as const).map((activation) => ({
    name: `${activation}-lr${lr}`,
    describe: `the four-layer net with ${activation === 'relu' ? 'ReLUs' : 'tanh units'}, ε ${lr}`,
    spec: fourLayerNet(data, activation),
    settings: {
      epochs: scale.curveEpochs,
      batch: 64,
      lr,
      momentum: 0.9,
      weightDecay: 0,
      schedule: 'constant',
      init: 'pytorch',
      cropPad: 0,
      flip: false,
      inputs: 'unit',
    },
  }));
}

/** Section 5's arms: the paper's initialisation (weights N(0, 0.01), its inputs' scale) with the
 * biases of conv2, conv4, conv5, fc6 and fc7 at 1, and at 0. */
export function biasArms(data: DataShape, scale: Scale): Arm[] {
  const settings: ArmSettings = {
    epochs: scale.biasEpochs,
    batch: 128,
    lr: 0.01,
    momentum: 0.9,
    weightDecay: 0.0005,
    schedule: 'constant',
    init: 'paper',
    cropPad: 0,
    flip: true,
    inputs: 'pixels',
  };
  const spec = smallNet(data);
  return [
    { name: 'biases-one', describe: "the paper's initialisation: biases 1 in conv2, conv4, conv5, fc6, fc7", spec, settings, trace: true },
    {
      name: 'biases-zero',
      describe: "the paper's initialisation with every bias 0",
      spec,
      settings: { ...settings, init: 'paper-zero-bias' },
      trace: true,
    },
  ];
}

/** The arms on photos (`--photos`): the paper's net with its own recipe (`alexnet`, the batch fitted
 * to the photos, ε scaled to it), with random crops, flips and colour noise; without the colour
 * noise; and without any of them (the centre crop alone). */
export function photoArms(scale: Scale, classes: number, trainImages: number): Arm[] {
  const { settings: recipe } = resolveSettings('alexnet', { epochs: scale.epochs }, trainImages);
  const settings: ArmSettings = {
    epochs: recipe.epochs,
    batch: recipe.batch,
    lr: recipe.lr,
    momentum: recipe.momentum,
    weightDecay: recipe.weightDecay,
    schedule: String(recipe.schedule),
    init: recipe.init,
    cropPad: 0,
    flip: true,
    pca: recipe.pca,
    randomCrops: true,
    inputs: 'unit',
  };
  const spec = replaceClasses(alexnet({ inputSize: 224 }), classes);
  return [
    { name: 'reference', describe: "the paper's net: random crops, flips and colour noise", spec, settings, tenPatch: true },
    { name: 'no-pca', describe: 'without the PCA colour noise', spec, settings: { ...settings, pca: 0 } },
    {
      name: 'no-augmentation',
      describe: 'trained on the centre crops as they are: no random crops, flips or colour noise',
      spec,
      settings: { ...settings, pca: 0, flip: false, randomCrops: false },
      tenPatch: true,
    },
  ];
}
