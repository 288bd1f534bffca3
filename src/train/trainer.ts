/**
 * The training loop: epochs of shuffled, augmented batches; the paper's SGD; validation every
 * epoch with top-1/top-5 error; metrics appended to a JSONL file; `last` and `best` checkpoints
 * written atomically every epoch. A run resumes exactly from `last`: the data order of an epoch and
 * the augmentation of a batch are pure functions of (seed, epoch, batch), and the checkpoint holds
 * the weights, the momentum, the schedule, the position and the dropout generator, so a resumed run
 * ends with the same weights, bit for bit, as one never stopped.
 */
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import { cropAndFlip, mirrorImages } from '../data/augment.js';
import { fillBatch, imageCount, type ImageSet } from '../data/dataset.js';
import { type Checkpoint, readCheckpoint, writeCheckpoint } from '../io/checkpoint.js';
import { initializers } from '../net/init.js';
import { Net } from '../net/net.js';
import type { NetSpec } from '../net/spec.js';
import { Philox, type PhiloxState, streams } from '../random.js';
import { type Learner, logitsOf, SingleNet } from './learner.js';
import { ReplicaGroup } from './replicas.js';
import { afterEpoch, initialScheduleState, learningRateAt, type ScheduleSpec, type ScheduleState } from './schedule.js';
import { Sgd } from './sgd.js';

export interface TrainOptions {
  spec: NetSpec;
  backend: Backend;
  train: ImageSet;
  /** Evaluated after every epoch; drives the plateau schedule and the best checkpoint. */
  validation: ImageSet;
  outDir: string;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: ScheduleSpec;
  seed: number;
  init: keyof typeof initializers;
  /** Data parallelism: the batch is split over this many replicas of the net, one per thread, each
   * on a single-threaded backend of its own (wasm only). Default 1: one net, on `backend`. */
  replicas?: number;
  /** Random crops from the image zero-padded by this many pixels, and horizontal flips. */
  augment: { pad: number; flip: boolean };
  /** Normalisation of pixel values x/255: (x − mean) / std. */
  mean: number;
  std: number;
  /** Stored with the checkpoints, for predictions. */
  classNames?: string[];
  resume?: boolean;
  /** Stop after this many steps (tests of resume); the run can then be resumed. */
  stopAfterSteps?: number;
  onProgress?: (p: { epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: EpochMetrics) => void;
  /** Polled between steps: true saves and stops (Ctrl-C). */
  interrupted?: () => boolean;
}

export interface EpochMetrics {
  epoch: number;
  step: number;
  loss: number;
  trainError: number;
  valTop1Error: number;
  valTop5Error: number;
  valLoss: number;
  lr: number;
  imagesPerSecond: number;
  wallSeconds: number;
}

interface RunState {
  /** Epochs completed. */
  epoch: number;
  /** Next batch of the current epoch. */
  batchInEpoch: number;
  step: number;
  schedule: ScheduleState;
  /** One dropout generator per replica. */
  dropout: PhiloxState[];
  best: number | null;
  wallSeconds: number;
  /** Running sums of the current epoch. */
  lossSum: number;
  correct: number;
  seen: number;
}

export interface EvalResult {
  top1: number;
  top5: number;
  loss: number;
  count: number;
  /** With `mirror`: the scores of the images alone (no reflections), from the same pass. */
  singleView?: EvalResult;
}

/** The permutation of an epoch: Fisher-Yates driven by the epoch's own Philox stream. */
export function epochOrder(size: number, seed: number, epoch: number): Uint32Array {
  return shuffled(size, seed, streams.epochOrder(epoch));
}

/** A permutation of 0…size−1 by Fisher-Yates over one Philox stream. */
export function shuffled(size: number, seed: number, stream: number): Uint32Array {
  const order = Uint32Array.from({ length: size }, (_, i) => i);
  const rng = new Philox(seed, stream);
  for (let i = size - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** How many classes score above the label in one row of scores (0: a top-1 hit). */
function classesAbove(scores: ArrayLike<number>, start: number, classes: number, label: number): number {
  let above = 0;
  for (let c = 0; c < classes; c++) if (scores[start + c]! > scores[start + label]!) above++;
  return above;
}

/** The softmax of each row of logits, into `out`. */
function softmaxRows(z: ArrayLike<number>, rows: number, classes: number, out: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    let max = -Infinity, sum = 0;
    for (let c = 0; c < classes; c++) max = Math.max(max, z[r * classes + c]!);
    for (let c = 0; c < classes; c++) sum += Math.exp(z[r * classes + c]! - max);
    for (let c = 0; c < classes; c++) out[r * classes + c] = Math.exp(z[r * classes + c]! - max) / sum;
  }
}

/** Top-1/top-5 accuracy and mean loss of the net (in evaluation mode) on a whole set. With
 * `mirror`, each image's softmax output is averaged with its mirror image's, as the paper averages
 * over reflected test patches, and the images' own scores come beside (`singleView`). */
export async function evaluate(net: Net, set: ImageSet, mean: number, std: number, options: { mirror?: boolean } = {}): Promise<EvalResult> {
  const { logits, classes } = logitsOf(net);
  const [data, labelBlob] = net.inputNames;
  const batch = net.batch;
  const size = imageCount(set);
  const x = new Float32Array(net.shapeOf(data!).reduce((a, b) => a * b));
  const y = new Float32Array(batch);
  const single = new Float64Array(batch * classes), averaged = new Float64Array(batch * classes);
  const indices = Uint32Array.from({ length: size }, (_, i) => i);
  const singleScore = new Score(), averagedScore = new Score();
  const softmaxOfBatch = async (out: Float64Array) => {
    net.setInput(data!, x);
    net.forward({ training: false });
    softmaxRows(await net.read(logits), batch, classes, out);
  };
  for (let from = 0; from < size; from += batch) {
    const to = Math.min(size, from + batch);
    x.fill(0);
    y.fill(0);
    fillBatch(set, indices, from, to, mean, std, x, y);
    net.setInput(labelBlob!, y);
    await softmaxOfBatch(single);
    singleScore.add(single, to - from, classes, y);
    if (!options.mirror) continue;
    mirrorImages(x, batch, set.shape);
    await softmaxOfBatch(averaged);
    for (let i = 0; i < averaged.length; i++) averaged[i] = (averaged[i]! + single[i]!) / 2;
    averagedScore.add(averaged, to - from, classes, y);
  }
  return options.mirror ? { ...averagedScore.result(size), singleView: singleScore.result(size) } : singleScore.result(size);
}

/** Running top-1/top-5 hits and loss over batches of class probabilities. */
class Score {
  private top1 = 0;
  private top5 = 0;
  private loss = 0;

  add(probabilities: Float64Array, images: number, classes: number, labels: Float32Array): void {
    for (let b = 0; b < images; b++) {
      const above = classesAbove(probabilities, b * classes, classes, labels[b]!);
      this.loss -= Math.log(Math.max(probabilities[b * classes + labels[b]!]!, Number.MIN_VALUE));
      if (above === 0) this.top1++;
      if (above < 5) this.top5++;
    }
  }

  result(count: number): EvalResult {
    return { top1: this.top1 / count, top5: this.top5 / count, loss: this.loss / count, count };
  }
}

export async function train(o: TrainOptions): Promise<{ net: Net; metrics: EpochMetrics[] }> {
  const size = imageCount(o.train);
  const replicas = o.replicas ?? 1;
  if (o.batch > size) throw new Error(`batch size ${o.batch} is larger than the training set (${size} images)`);
  if (o.batch % replicas !== 0) throw new Error(`batch size ${o.batch} does not split evenly over ${replicas} replicas`);
  mkdirSync(o.outDir, { recursive: true });
  const lastPath = join(o.outDir, 'last.safetensors'), bestPath = join(o.outDir, 'best.safetensors'), metricsPath = join(o.outDir, 'metrics.jsonl');
  const learner = await createLearner(o, replicas);
  try {
    return await trainWith(learner, o, size, lastPath, bestPath, metricsPath);
  } finally {
    await learner.dispose();
  }
}

async function createLearner(o: TrainOptions, replicas: number): Promise<Learner> {
  const backend = o.backend;
  if (replicas > 1 && !(backend instanceof WasmBackend)) throw new Error(`${replicas} replicas need the wasm backend, not '${backend.name}'`);
  const net = Net.build(o.spec, { backend, batch: o.batch / replicas, seed: o.seed, init: initializers[o.init] });
  const sgd = new Sgd(net, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
  if (!(backend instanceof WasmBackend) || replicas === 1) return new SingleNet(net, sgd);
  return ReplicaGroup.start(net, sgd, backend, { spec: o.spec, seed: o.seed, init: o.init, replicas });
}

async function trainWith(learner: Learner, o: TrainOptions, size: number, lastPath: string, bestPath: string, metricsPath: string): Promise<{ net: Net; metrics: EpochMetrics[] }> {
  const net = learner.net;
  let state: RunState = {
    epoch: 0, batchInEpoch: 0, step: 0, schedule: initialScheduleState(o.lr), dropout: learner.randomStates(),
    best: null, wallSeconds: 0, lossSum: 0, correct: 0, seen: 0,
  };
  if (o.resume) {
    if (!existsSync(lastPath)) throw new Error(`--resume: no checkpoint ${lastPath}`);
    state = restore(learner, readCheckpoint(lastPath), lastPath);
  }
  const save = async (path: string) => writeCheckpoint(path, await snapshot(learner, { ...state, dropout: learner.randomStates() }, o));
  const { classes } = logitsOf(net);
  const x = new Float32Array(o.batch * o.train.shape.reduce((a, b) => a * b));
  const y = new Float32Array(o.batch);
  const scratch = new Float32Array(o.train.shape.reduce((a, b) => a * b));
  const batches = Math.floor(size / o.batch);
  const metrics: EpochMetrics[] = [];
  while (state.epoch < o.epochs) {
    const order = epochOrder(size, o.seed, state.epoch);
    const epochStart = performance.now();
    const seenAtStart = state.seen;
    for (; state.batchInEpoch < batches; state.batchInEpoch++) {
      if (o.interrupted?.() || (o.stopAfterSteps !== undefined && state.step >= o.stopAfterSteps)) {
        await save(lastPath);
        return { net, metrics };
      }
      fillBatch(o.train, order, state.batchInEpoch * o.batch, (state.batchInEpoch + 1) * o.batch, o.mean, o.std, x, y);
      if (o.augment.pad || o.augment.flip) {
        cropAndFlip(x, o.batch, o.train.shape, o.augment.pad, -o.mean / o.std, o.augment.flip, new Philox(o.seed, streams.augmentation(state.epoch, state.batchInEpoch)), scratch);
      }
      state.schedule.lr = learningRateAt(o.schedule, state.schedule, o.lr, state.step, batches, batches * o.epochs);
      const { loss, logits: z } = await learner.step(x, y, state.schedule.lr);
      if (!Number.isFinite(loss)) {
        throw new Error(`the loss became ${loss} at epoch ${state.epoch + 1}, step ${state.step + 1} (learning rate ${state.schedule.lr}); try a lower --lr. The last good checkpoint is ${existsSync(lastPath) ? lastPath : 'none (first epoch)'}`);
      }
      for (let b = 0; b < o.batch; b++) if (classesAbove(z, b * classes, classes, y[b]!) === 0) state.correct++;
      state.lossSum += loss * o.batch;
      state.seen += o.batch;
      state.step++;
      const elapsed = (performance.now() - epochStart) / 1000;
      o.onProgress?.({ epoch: state.epoch + 1, batch: state.batchInEpoch + 1, batches, loss, imagesPerSecond: (state.seen - seenAtStart) / elapsed });
    }
    state.wallSeconds += (performance.now() - epochStart) / 1000;
    const val = await evaluate(net, o.validation, o.mean, o.std);
    const m: EpochMetrics = {
      epoch: state.epoch + 1, step: state.step, loss: state.lossSum / state.seen, trainError: 1 - state.correct / state.seen,
      valTop1Error: 1 - val.top1, valTop5Error: 1 - val.top5, valLoss: val.loss, lr: state.schedule.lr,
      imagesPerSecond: (state.seen - seenAtStart) / ((performance.now() - epochStart) / 1000), wallSeconds: state.wallSeconds,
    };
    metrics.push(m);
    appendFileSync(metricsPath, `${JSON.stringify(m)}\n`);
    o.onEpoch?.(m);
    state.schedule = afterEpoch(o.schedule, state.schedule, state.epoch + 1, m.valTop1Error);
    state.epoch++;
    state.batchInEpoch = 0;
    state.lossSum = 0;
    state.correct = 0;
    state.seen = 0;
    const isBest = state.best === null || m.valTop1Error < state.best;
    if (isBest) state.best = m.valTop1Error;
    await save(lastPath);
    if (isBest) await save(bestPath);
  }
  return { net, metrics };
}

async function snapshot({ net, sgd }: Learner, state: RunState, o: TrainOptions): Promise<Checkpoint> {
  const params = await net.readParams();
  const velocities: Checkpoint['velocities'] = {};
  for (const [i, p] of net.params.entries()) velocities[p.name] = { shape: p.shape, data: await sgd.velocities[i]!.read() };
  return {
    spec: net.spec,
    params: Object.fromEntries(net.params.map((p) => [p.name, { shape: p.shape, data: params[p.name]! }])),
    velocities,
    state: { ...state, options: { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, batch: o.batch, seed: o.seed, replicas: o.replicas ?? 1, schedule: o.schedule, augment: o.augment, mean: o.mean, std: o.std, classNames: o.classNames } },
  };
}

function restore(learner: Learner, checkpoint: Checkpoint, path: string): RunState {
  const velocities = learner.net.params.map((p) => {
    const v = checkpoint.velocities?.[p.name];
    if (!v) throw new Error(`${path}: no momentum for ${p.name}`);
    return v.data;
  });
  const state = checkpoint.state as unknown as RunState & { dropout: PhiloxState | PhiloxState[] };
  const dropout = Array.isArray(state.dropout) ? state.dropout : [state.dropout]; // checkpoints of single-net runs before replicas
  if (dropout.length !== learner.replicas) throw new Error(`${path} is from a run of ${dropout.length} replica(s); resume it with --replicas ${dropout.length}`);
  learner.load(Object.fromEntries(Object.entries(checkpoint.params).map(([k, t]) => [k, t.data])), velocities, dropout);
  return { ...state, dropout };
}
