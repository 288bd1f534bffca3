/**
 * What training and evaluation read: images by index as the net's normalised inputs, augmented
 * when given a generator (training), plain without (evaluation). Two sources: small in-memory sets
 * (IDX, CIFAR) and prepared photo stores, read one record at a time so memory stays bounded
 * whatever the store's size.
 */
import { Philox, streams } from '../random.js';
import { cropAndFlip } from './augment.js';
import { fillBatch, imageCount, type ImageSet } from './dataset.js';
import { type Preprocess, roundHalfEven } from './preprocess.js';
import { type RecordReader, symmetricEigen } from './store.js';

/** Which presentation of the epoch's examples a training batch holds. Each example draws its own
 * numbers, at its place in the epoch's order: so an example is augmented the same whoever assembles
 * it, with whichever others, and whenever (a loader thread a batch ahead; a data-parallel rank its
 * slice of the batch alone). */
export interface Augmentation {
  seed: number;
  epoch: number;
  /** The place in the epoch's order of the first example filled. */
  position: number;
  /** Where this caller's next batch starts, for sources that fetch ahead: a data-parallel rank's
   * next slice is a whole step further. Default: right after this one. */
  next?: number;
}

export interface BatchSource {
  readonly count: number;
  readonly classes: number;
  /** The per-example input shape [C, H, W] it produces. */
  readonly shape: [number, number, number];
  readonly source: string;
  /** Images `order[from…to)` as inputs into `x` and labels into `y`; augmented when told which
   * presentation this is. `order` is the same array for the batches of one epoch. */
  fill(order: Uint32Array, from: number, to: number, x: Float32Array, y: Float32Array, augmentation?: Augmentation): void | Promise<void>;
  /** Stops worker threads, closes files. */
  close?(): Promise<void> | void;
}

/** Words of the epoch's stream each example owns: colour noise takes 4 (3 normals, drawn in pairs),
 * a crop 2, a flip 1. */
const DRAWS_PER_EXAMPLE = 16;

/** The generator of the `k`-th example filled: Philox(seed) on the epoch's stream, at the example's place. */
export function exampleRandom(a: Augmentation, k: number): Philox {
  return Philox.fromState({ seed: a.seed, stream: streams.augmentation(a.epoch), drawn: (a.position + k) * DRAWS_PER_EXAMPLE });
}

/** The principal components of a colour set's RGB pixel values (0–255 units): eigenvalues,
 * descending, and their unit eigenvectors (rows) — what the paper's colour noise draws along. */
export interface ColourComponents {
  eigenvalues: number[];
  eigenvectors: number[][];
}

export function colourComponents(set: ImageSet): ColourComponents {
  const [C, H, W] = set.shape;
  if (C !== 3) throw new Error(`${set.source}: colour noise needs RGB images, not ${C} channel${C === 1 ? '' : 's'}`);
  const plane = H * W,
    n = imageCount(set) * plane;
  const sums = [0, 0, 0],
    products = new Float64Array(9);
  for (let i = 0; i < imageCount(set); i++) {
    const base = i * 3 * plane;
    for (let k = 0; k < plane; k++) {
      const rgb = [set.pixels[base + k]!, set.pixels[base + plane + k]!, set.pixels[base + 2 * plane + k]!];
      for (let a = 0; a < 3; a++) {
        sums[a]! += rgb[a]!;
        for (let b = 0; b < 3; b++) products[3 * a + b]! += rgb[a]! * rgb[b]!;
      }
    }
  }
  const mean = sums.map((s) => s / n);
  const covariance = [0, 1, 2].map((a) => [0, 1, 2].map((b) => products[3 * a + b]! / n - mean[a]! * mean[b]!));
  const { values, vectors } = symmetricEigen(covariance);
  return { eigenvalues: values, eigenvectors: vectors };
}

/** The paper's colour noise for one image: Σᵢ αᵢ √λᵢ pᵢ with αᵢ ~ N(0, σ) (0–255 units; √λ as
 * `storeBatches` reads the paper), into `shift`. */
function colourShift(rng: Philox, sigma: number, components: ColourComponents, shift: number[]): void {
  shift.fill(0);
  for (let i = 0; i < 3; i++) {
    const scaled = rng.nextNormal() * sigma * Math.sqrt(Math.max(0, components.eigenvalues[i]!));
    for (let c = 0; c < 3; c++) shift[c]! += scaled * components.eigenvectors[i]![c]!;
  }
}

/** An in-memory set normalised as (x/255 − mean)/std; augmented by crops from the image padded by
 * `pad` pixels (of a black pixel's value) and flips, and for colour sets given `pca`, the paper's
 * colour noise (drawn first, from the same generator). */
export function imageSetBatches(
  set: ImageSet,
  mean: number,
  std: number,
  augment: { pad: number; flip: boolean; pca?: { sigma: number; components: ColourComponents } },
): BatchSource {
  const scratch = new Float32Array(set.shape[0] * set.shape[1] * set.shape[2]);
  const plane = set.shape[1] * set.shape[2];
  const shift = [0, 0, 0];
  const { pca } = augment;
  return {
    count: imageCount(set),
    classes: set.classes,
    shape: set.shape,
    source: set.source,
    fill(order, from, to, x, y, augmentation) {
      fillBatch(set, order, from, to, mean, std, x, y);
      if (!augmentation) return;
      const random = Array.from({ length: to - from }, (_, b) => exampleRandom(augmentation, b));
      if (pca && pca.sigma > 0)
        for (let b = 0; b < to - from; b++) {
          colourShift(random[b]!, pca.sigma, pca.components, shift);
          for (let c = 0; c < 3; c++) {
            const image = x.subarray((b * 3 + c) * plane, (b * 3 + c + 1) * plane);
            for (let k = 0; k < plane; k++) image[k] = image[k]! + shift[c]! / 255 / std;
          }
        }
      if (augment.pad || augment.flip)
        cropAndFlip(x, to - from, set.shape, augment.pad, -mean / std, augment.flip, (b) => random[b]!, scratch);
    },
  };
}

export interface StoreAugmentation {
  /** Random crops and horizontal reflections (section 4.1); the centre crop without. */
  crop: boolean;
  flip: boolean;
  /** The standard deviation of the PCA colour noise's α (the paper's 0.1); 0 for none. */
  pca: number;
}

/**
 * A store's images as `crop`² inputs: a random crop (or the centre), reflected with probability ½,
 * with the paper's PCA colour noise — each image's RGB values shifted by Σᵢ αᵢ λᵢ pᵢ (pᵢ the
 * eigenvectors of the training set's RGB covariance, αᵢ ~ N(0, σ) drawn per image per
 * presentation) — then normalised per channel as `preprocess` says. λᵢ is taken as the deviation
 * along pᵢ, √eigenvalue, as common reimplementations (fb.resnet.torch's Lighting) read the paper:
 * its eigenvalues themselves, in 0–255 units, shift colours by ~1000 levels (a first run diverged
 * at once), and in 0–1 units by under one.
 */
export function storeBatches(reader: RecordReader, crop: number, preprocess: Preprocess, augment: StoreAugmentation): BatchSource {
  const { size, stats, classIds } = reader.index;
  if (crop > size) throw new Error(`the model takes ${crop}×${crop} images; the store holds ${size}×${size}`);
  const pixels = new Uint8Array(3 * size * size);
  const plane = crop * crop;
  const centre = roundHalfEven((size - crop) / 2);
  const shift = [0, 0, 0];
  return {
    count: reader.count,
    classes: classIds.length,
    shape: [3, crop, crop],
    source: `${reader.split} split of the store of ${reader.index.source}`,
    fill(order, from, to, x, y, augmentation) {
      for (let b = 0; b < to - from; b++) {
        y[b] = reader.read(order[from + b]!, pixels);
        const rng = augmentation && exampleRandom(augmentation, b);
        const random = rng && augment.crop;
        const left = random ? rng.nextInt(size - crop + 1) : centre,
          top = random ? rng.nextInt(size - crop + 1) : centre;
        const mirror = rng !== undefined && augment.flip && rng.nextFloat() < 0.5;
        shift.fill(0);
        if (rng && augment.pca > 0) colourShift(rng, augment.pca, stats, shift);
        cropInput(pixels, size, { x: left, y: top, flip: mirror }, crop, preprocess, shift, x, b * 3 * plane);
      }
    },
  };
}

/** A window of a store image (`size`² planar RGB) as a normalised `crop`² input at `out[at]`:
 * reflected when asked, each colour shifted by `shift` (0–255 units), the channels in the order
 * and with the statistics `preprocess` gives. */
export function cropInput(
  pixels: Uint8Array,
  size: number,
  window: { x: number; y: number; flip: boolean },
  crop: number,
  preprocess: Preprocess,
  shift: readonly number[],
  out: Float32Array,
  at: number,
): void {
  for (let c = 0; c < 3; c++) {
    const source = preprocess.channels === 'bgr' ? 2 - c : c;
    const m = preprocess.mean[c % preprocess.mean.length]!,
      s = preprocess.std[c % preprocess.std.length]!;
    const base = at + c * crop * crop;
    for (let row = 0; row < crop; row++) {
      const from = source * size * size + (window.y + row) * size + window.x;
      for (let col = 0; col < crop; col++) {
        const value = pixels[from + (window.flip ? crop - 1 - col : col)]! + shift[source]!;
        out[base + row * crop + col] = (value / 255 - m) / s;
      }
    }
  }
}

/** The normalisation a store's training uses: its RGB mean, and one deviation for all channels. */
export function storePreprocess(reader: RecordReader): Preprocess {
  const { stats, size } = reader.index;
  const deviation = Math.sqrt((stats.covariance[0]![0]! + stats.covariance[1]![1]! + stats.covariance[2]![2]!) / 3) / 255;
  return { channels: 'rgb', mean: stats.rgbMean.map((m) => m / 255), std: [deviation, deviation, deviation], resize: size };
}
