/** Model names the CLI and the library accept, and loading a user's own spec file. */
import { readFileBytes } from '../io/files.js';
import { CAFFE, type Preprocess, TORCHVISION } from '../data/preprocess.js';
import type { NetSpec } from '../net/spec.js';
import { alexnet, alexnetCaffe, alexnetSmall, alexnetTorchvision } from './alexnet.js';

export interface ZooModel {
  describe: string;
  spec: () => NetSpec;
  /** The preprocessing its pretrained weights (where they exist) expect. */
  preprocess?: Preprocess;
  /** The training recipe it trains well with (train/recipes.ts). */
  recipe: string;
}

export const models: Record<string, ZooModel> = {
  alexnet: {
    describe: "the paper's two-column net, 224×224 input (conv1 padded by 2)",
    spec: () => alexnet({ inputSize: 224 }),
    recipe: 'alexnet',
  },
  'alexnet-227': {
    describe: "the paper's two-column net, 227×227 input as Caffe",
    spec: () => alexnet({ inputSize: 227 }),
    recipe: 'alexnet',
  },
  'alexnet-caffe': {
    describe: "Caffe's bvlc_alexnet: 227×227 input, Caffe's LRN (α/n, k = 1), ceil pooling",
    spec: () => alexnetCaffe(),
    preprocess: CAFFE,
    recipe: 'alexnet',
  },
  'alexnet-torchvision': {
    describe: "torchvision's one-column alexnet, 224×224 input, its layers named as torchvision's",
    spec: () => alexnetTorchvision(),
    preprocess: TORCHVISION,
    recipe: 'torchvision',
  },
  'alexnet-small-28': {
    describe: 'the scaled AlexNet for 28×28 grey images, 10 classes (MNIST, Fashion-MNIST)',
    spec: () => alexnetSmall({ inputSize: 28, channels: 1, classes: 10 }),
    recipe: 'scaled',
  },
  'alexnet-small-32': {
    describe: 'the scaled AlexNet for 32×32 colour images, 10 classes (CIFAR-10)',
    spec: () => alexnetSmall({ inputSize: 32, channels: 3, classes: 10 }),
    recipe: 'scaled',
  },
};

/** A zoo name, or the path of a JSON spec file. */
export function resolveModel(nameOrPath: string): NetSpec {
  const zoo = models[nameOrPath];
  if (zoo) return zoo.spec();
  if (!nameOrPath.endsWith('.json'))
    throw new Error(`unknown model '${nameOrPath}' (known: ${Object.keys(models).join(', ')}; or a .json spec file)`);
  return parseSpec(readFileBytes(nameOrPath, 'model spec'), nameOrPath);
}

/** A JSON spec file's bytes; `source` names it in errors. */
export function parseSpec(bytes: Uint8Array, source: string): NetSpec {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as NetSpec;
  } catch (error) {
    throw new Error(`model spec ${source} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** The scaled AlexNet for a dataset's images: 28×28 (MNIST-like) or 32×32 (CIFAR-like). */
export function defaultModelFor([channels, height, width]: readonly number[], classes: number): NetSpec {
  if (height !== width || (height !== 28 && height !== 32)) throw new Error(`no default model for ${height}×${width} images; pass --model`);
  return alexnetSmall({ inputSize: height, channels: channels!, classes });
}
