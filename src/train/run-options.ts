/** What a training run records with its checkpoints (their `state.options`), and reads back. */
import { inferenceOptionsOf } from '../models/open.js';
import type { Checkpoint } from '../net/checkpoint.js';
import type { Preprocess } from '../data/preprocess.js';
import type { ScheduleSpec } from './schedule.js';

/** The settings of a training run, stored with its checkpoints: what `--resume` continues with
 * and what `predict` and `eval` need (the normalisation, the class names). */
export interface RunOptions {
  lr: number;
  momentum: number;
  weightDecay: number;
  batch: number;
  epochs: number;
  seed: number;
  init: string;
  schedule: ScheduleSpec;
  /** Padded crops (small images) or crops of the input size (stores), flips, PCA noise's σ. */
  augment: { pad: number; flip: boolean; crop?: boolean; pca?: number };
  /** Normalisation of pixel values x/255: (x − mean) / std. */
  mean: number;
  std: number;
  /** How photos become inputs, when not the uniform mean/std above (a fine-tuned pretrained net's). */
  preprocess?: Preprocess;
  classNames?: string[];
  /** The model a fine-tuning run started from, and the layers it left frozen. */
  initFrom?: string;
  frozen?: string[];
  /** The named recipe (`--recipe`) the settings came from. */
  recipe?: string;
  /** Validation was the dataset's own val split, not held-out training images. */
  validationSplit?: boolean;
  /** Sizes of the training and validation sets: a resumed run must see the same data. */
  trainImages: number;
  validationImages: number;
  /** Settings changed when the run was resumed (each explicitly), in order. */
  changes?: SettingChange[];
}

export interface SettingChange {
  /** Epochs completed and steps taken when the change took effect. */
  epoch: number;
  step: number;
  setting: string;
  from: unknown;
  to: unknown;
}

/** The run options stored in a checkpoint's state, with the fields inference needs type-checked. */
export function runOptionsOf(checkpoint: Checkpoint, path: string): Partial<RunOptions> {
  return inferenceOptionsOf(checkpoint, path) as Partial<RunOptions>;
}
