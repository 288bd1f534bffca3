/**
 * What the page and its engine (a Worker holding the backend, the model and the training run)
 * say to each other. A request carries an `id` and gets one reply with it, `ok` or `error`; events
 * (progress, epochs, filters) come unasked while a run trains.
 */
import type { Preprocess } from '../data/preprocess.js';
import type { LayerSummary } from '../net/net.js';
import type { EpochMetrics } from '../train/run-store.js';

export interface NamedBytes {
  name: string;
  bytes: ArrayBuffer;
}

export type Request =
  | { type: 'start'; backend?: 'webgpu' | 'wasm'; threads?: number }
  | { type: 'open'; zoo: string }
  | { type: 'open'; file: NamedBytes }
  /** The bundled sample (`url`), or the user's IDX files (train and t10k images and labels). */
  | { type: 'data'; url: string }
  | { type: 'data'; files: NamedBytes[] }
  /** A folder of photos (`class/*.jpg`, or `train/class/…` and `val/class/…`): names are paths in it. */
  | { type: 'data'; photos: NamedBytes[] }
  | { type: 'train'; epochs: number; batch?: number; lr?: number }
  | { type: 'pause' }
  | { type: 'stop' }
  /** An image already brought to the model's input size: RGBA, row by row. */
  | { type: 'predict'; width: number; height: number; rgba: Uint8ClampedArray; top: number }
  /** The training images nearest to the last image classified, in the last hidden layer. */
  | { type: 'neighbours'; count: number }
  | { type: 'save' };

export interface BackendInfo {
  name: string;
  /** Why this backend, in words: the adapter, the threads, or what ruled the others out. */
  detail: string;
}

export interface ModelInfo {
  kind: string;
  source: string;
  /** C, H, W of an image. */
  input: number[];
  classes: number;
  classNames?: string[];
  preprocess?: Preprocess;
  layers: LayerSummary[];
  parameters: number;
  /** Holds weights (a zoo net or a spec has none until trained). */
  trained: boolean;
  /** A checkpoint of ours with its momentum: training it goes on from where it stopped. */
  resumable: boolean;
  /** The first convolution's filters, when it has one and weights. */
  filters?: Filters;
}

export interface DataInfo {
  source: string;
  train: number;
  validation: number;
  test: number;
  shape: number[];
  classes: number;
  classNames?: string[];
}

export interface Filters {
  weight: Float32Array;
  shape: number[];
  columns: number;
}

export interface Progress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  step: number;
  loss: number;
  imagesPerSecond: number;
  /** Seconds left at this rate, the validation passes not counted. */
  eta: number;
}

/** A validation image the net got wrong: its pixels (C×H×W bytes), its label, its top-1 class. */
export interface Miss {
  pixels: Uint8Array;
  shape: number[];
  label: number;
  predicted: number;
}

export interface Prediction {
  top: { class: number; name?: string; probability: number }[];
  maps: FeatureMaps[];
}

/** A layer's activations for the image: the first `shape[0]` of its `channels` maps. */
export interface FeatureMaps {
  layer: string;
  channels: number;
  shape: number[];
  values: Float32Array;
}

export interface Neighbours {
  layer: string;
  images: { pixels: Uint8Array; shape: number[]; label: number; distance: number }[];
}

export type RunState = 'idle' | 'training' | 'paused' | 'stopped' | 'finished';

export type Reply =
  | { id: number; ok: true; value?: BackendInfo | ModelInfo | DataInfo | Prediction | Neighbours | NamedBytes | { state: RunState } }
  | { id: number; ok: false; error: string };

export type Event =
  | { event: 'progress'; progress: Progress }
  | { event: 'epoch'; metrics: EpochMetrics }
  /** After each epoch: the validation images by label and top-1 class, and the first misses. */
  | { event: 'validation'; confusion: number[][]; misses: Miss[] }
  | { event: 'filters'; filters: Filters }
  | { event: 'state'; state: RunState; error?: string };
