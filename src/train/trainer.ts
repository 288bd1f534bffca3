/**
 * The training loop: epochs of shuffled, augmented batches; the paper's SGD; validation every
 * epoch with top-1/top-5 error; metrics appended to a JSONL file; `last` and `best` checkpoints
 * written atomically every epoch. A run resumes exactly from `last`: the data order of an epoch and
 * the augmentation of an example are pure functions of (seed, epoch, place in the epoch), and the checkpoint holds
 * the weights, the momentum, the schedule, the position and the dropout generator, so a resumed run
 * ends with the same weights, bit for bit, as one never stopped.
 */
import type { Backend } from '../backend/backend.js';
import type { BatchSource } from '../data/batches.js';
import type { Preprocess } from '../data/preprocess.js';
import type { Checkpoint } from '../net/checkpoint.js';
import { type RunOptions, runOptionsOf, type SettingChange } from './run-options.js';
import { initializers } from '../net/init.js';
import { Net } from '../net/net.js';
import { classifierLayer, trainingRoles, type TrainingRoles } from '../net/roles.js';
import { formatShape } from '../tensor.js';
import type { NetSpec } from '../net/spec.js';
import { type PhiloxState, shuffled, streams } from '../random.js';
import { classesAbove, evaluate, type EvalResult, Interrupted, yieldToEvents } from './evaluate.js';
import { RunFolder } from './run-folder.js';
import type { EpochMetrics, RunStore } from './run-store.js';
import { afterEpoch, initialScheduleState, learningRateAt, type ScheduleSpec, type ScheduleState } from './schedule.js';
import { resumeSettings } from './settings.js';
import { type Collective, DataParallel } from './distributed.js';
import { formatNumber } from './recipes.js';
import { Sgd } from './sgd.js';

export { type EpochMetrics, MemoryRun, type RunStore } from './run-store.js';
export { evaluate, type EvalResult } from './evaluate.js';

export interface TrainOptions {
  spec: NetSpec;
  backend: Backend;
  /** Batches normalised and augmented by the source itself. */
  train: BatchSource;
  /** Evaluated after every epoch; drives the plateau schedule and the best checkpoint. */
  validation: BatchSource;
  /** The run folder, created or resumed; or `store`, where the run is kept instead (a page's, in memory). */
  outDir?: string;
  store?: RunStore;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: ScheduleSpec;
  seed: number;
  init: keyof typeof initializers;
  /** Fine-tuning: start from these weights rather than `init`'s. Every parameter must be there
   * with its shape, but the classifier's when the number of classes changed (`init` draws those). */
  initFrom?: { source: string; params?: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> };
  /** Layers whose parameters SGD leaves as they are (fine-tuning the classifier alone). */
  frozen?: string[];
  /** The named recipe the settings came from, recorded. */
  recipe?: string;
  /** Validation is the dataset's own val split (recorded: a resumed run takes it again). */
  validationSplit?: boolean;
  /** The sources' augmentation and normalisation, recorded with the run (the sources apply them):
   * random crops from the image zero-padded by `pad` pixels (or, from a store, crops of the input
   * size), horizontal flips, PCA colour noise; (x/255 − mean) / std, or `preprocess` per channel. */
  augment: RunOptions['augment'];
  mean: number;
  std: number;
  preprocess?: Preprocess;
  /** Stored with the checkpoints, for predictions. */
  classNames?: string[];
  /** Continue the run in `outDir` from its last checkpoint. Its settings must equal these, but for
   * the ones named in `overrides` (lr, momentum, weight-decay, epochs, schedule, crop-pad, flip,
   * class-names), which then change from here on and are recorded. */
  resume?: boolean;
  overrides?: string[];
  /** Start over in an `outDir` that holds a run, deleting it. */
  force?: boolean;
  /** Stop after this many steps (tests of resume); the run can then be resumed. */
  stopAfterSteps?: number;
  onProgress?: (p: { epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: EpochMetrics) => void;
  /** Given each epoch's validation scores with their confusion matrix and misses (a page shows them). */
  onValidation?: (result: EvalResult) => void;
  /** Polled between steps: true saves and stops (Ctrl-C). */
  interrupted?: () => boolean;
  /** Data-parallel training over these processes (MPI's ranks): each trains on its slice of every
   * batch of `batch` examples and their gradients are summed; the leader (rank 0) alone writes the
   * run folder. The run equals one process's with the same batch, to float-sum rounding. */
  collective?: Collective;
  /** Given the net once it is built: a page reads its first layer's filters as they learn. */
  onNet?: (net: Net) => void;
  /** Called once the run folder, the model and (when resuming) the settings have been checked. */
  onStart?: () => void;
  /** Told what `resume` continues from and what it changed. */
  onResume?: (r: { epoch: number; step: number; changes: SettingChange[] }) => void;
}

export interface TrainResult {
  net: Net;
  /** Metrics of the epochs this call completed. */
  metrics: EpochMetrics[];
  /** Stopped early (`interrupted` or `stopAfterSteps`): the last checkpoint holds the position. */
  interrupted: boolean;
}

interface RunState {
  /** Epochs completed. */
  epoch: number;
  /** Next batch of the current epoch (= batches per epoch: trained, not yet validated). */
  batchInEpoch: number;
  step: number;
  schedule: ScheduleState;
  /** The dropout generator's position (a list: checkpoints of data-parallel runs held one per replica). */
  dropout: PhiloxState[];
  /** The run's first loss: with ln(classes), the scale a diverging loss is measured against. */
  firstLoss?: number;
  /** The best validation error so far, and the epoch that reached it (whose weights `best` holds). */
  best: number | null;
  bestEpoch?: number;
  /** Running sums of the current epoch. */
  lossSum: number;
  correct: number;
  seen: number;
}

/** The permutation of an epoch: Fisher-Yates driven by the epoch's own Philox stream. */
export function epochOrder(size: number, seed: number, epoch: number): Uint32Array {
  return shuffled(size, seed, streams.epochOrder(epoch));
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const size = o.train.count;
  if (size === 0) throw new Error(`${o.train.source}: no training images`);
  if (o.validation.count === 0) throw new Error(`${o.validation.source}: no validation images`);
  if (o.batch > size) throw new Error(`batch size ${o.batch} is larger than the training set (${size} images)`);
  const ranks = o.collective?.size ?? 1;
  if (o.batch % ranks !== 0) throw new Error(`batch size ${o.batch} does not split over ${ranks} processes: give a multiple of ${ranks}`);
  const rank = o.collective?.rank ?? 0;
  const folder = rank === 0 ? openStore(o) : undefined;
  let succeeded = false;
  try {
    const net = Net.build(o.spec, { backend: o.backend, batch: o.batch / ranks, seed: o.seed, init: initializers[o.init] });
    net.firstExample = rank * net.batch;
    o.onNet?.(net);
    if (o.initFrom?.params && !o.resume) loadInitialWeights(net, o.initFrom.source, o.initFrom.params);
    const frozen = new Set((o.frozen ?? []).flatMap((layer) => net.params.filter((p) => layerOf(p.name) === layer).map((p) => p.name)));
    if (o.frozen?.length) net.freeze(o.frozen);
    const sgd = new Sgd(net, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, frozen });
    try {
      const parallel = o.collective && new DataParallel(o.collective, net);
      const result = await trainWith(net, sgd, o, folder, parallel);
      succeeded = true;
      return result;
    } finally {
      sgd.dispose();
    }
  } finally {
    folder?.close(succeeded);
  }
}

/** Fine-tuning's start: the source's weights wherever a parameter has its name and shape; only the
 * classifier may differ (a new number of classes), and keeps its initialisation. */
function loadInitialWeights(net: Net, source: string, params: NonNullable<NonNullable<TrainOptions['initFrom']>['params']>): void {
  const classifier = classifierLayer(net.spec)?.name;
  const copied: Record<string, ArrayLike<number>> = {};
  for (const p of net.params) {
    const t = params[p.name];
    if (t && t.shape.join() === p.shape.join()) copied[p.name] = t.data;
    else if (layerOf(p.name) !== classifier)
      throw new Error(
        `--init-from ${source}: ${t ? `'${p.name}' is ${formatShape(t.shape)}, the model's ${formatShape(p.shape)}` : `it has no '${p.name}'`}`,
      );
  }
  net.loadParams(copied, { strict: false });
}

/** `features.0` of `features.0.weight`. */
function layerOf(param: string): string {
  return param.slice(0, param.lastIndexOf('.'));
}

/** One SGD step: forward, backward and the update at learning rate `lr`; the batch's mean loss and
 * logits. Data-parallel, the gradients are the mean over every rank's slice: each rank's loss
 * weighs 1/ranks, and the ranks' gradients are summed before the update. */
async function step(net: Net, sgd: Sgd, roles: TrainingRoles, x: Float32Array, y: Float32Array, lr: number, parallel?: DataParallel) {
  net.setInput(roles.data, x);
  net.setInput(roles.labels, y);
  sgd.lr = lr;
  net.forward({ training: true });
  net.backward(parallel ? { [roles.loss]: [1 / parallel.size] } : undefined);
  if (parallel) await parallel.sumGradients(sgd.trained.map((p) => p.grad));
  sgd.step();
  const [loss] = await net.read(roles.loss);
  return { loss: loss!, logits: await net.read(roles.logits) };
}

/** The settings a checkpoint records, from the options of this call. */
function runOptions(o: TrainOptions): RunOptions {
  return {
    lr: o.lr,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    batch: o.batch,
    epochs: o.epochs,
    seed: o.seed,
    init: o.init,
    schedule: o.schedule,
    augment: o.augment,
    mean: o.mean,
    std: o.std,
    ...(o.preprocess ? { preprocess: o.preprocess } : {}),
    ...(o.classNames ? { classNames: o.classNames } : {}),
    ...(o.initFrom ? { initFrom: o.initFrom.source } : {}),
    ...(o.frozen?.length ? { frozen: o.frozen } : {}),
    ...(o.recipe ? { recipe: o.recipe } : {}),
    ...(o.validationSplit ? { validationSplit: true } : {}),
    trainImages: o.train.count,
    validationImages: o.validation.count,
  };
}

function openStore(o: TrainOptions): RunStore {
  if (o.store) {
    if (o.resume && !o.store.has('last')) throw new Error(`${o.store.describe('last')} does not exist: nothing to resume`);
    return o.store;
  }
  if (o.outDir === undefined) throw new Error('a training run needs outDir or store: where its checkpoints go');
  return RunFolder.open(o.outDir, { resume: o.resume, force: o.force });
}

/** Trains `net`; `folder` keeps the run on the leader, undefined on the other ranks of a data-parallel run. */
async function trainWith(net: Net, sgd: Sgd, o: TrainOptions, folder: RunStore | undefined, parallel?: DataParallel): Promise<TrainResult> {
  const settings = runOptions(o);
  let state: RunState = {
    epoch: 0,
    batchInEpoch: 0,
    step: 0,
    schedule: initialScheduleState(o.lr),
    dropout: [net.randomState()],
    best: null,
    lossSum: 0,
    correct: 0,
    seen: 0,
  };
  let wallSeconds = 0;
  if (o.resume && folder) {
    const lastPath = folder.describe('last');
    const checkpoint = folder.readCheckpoint('last');
    state = restore(net, sgd, checkpoint, lastPath);
    const resumed = resumeSettings({
      stored: runOptionsOf(checkpoint, lastPath),
      storedSpec: checkpoint.spec,
      given: settings,
      spec: o.spec,
      overrides: o.overrides ?? [],
      at: state,
      source: lastPath,
    });
    if (resumed.changes.length > 0) settings.changes = resumed.changes;
    state.schedule.lr *= resumed.lrFactor;
    wallSeconds = folder.rewindMetrics(state.epoch, state.step);
    if (state.bestEpoch === state.epoch && state.batchInEpoch === 0) repairBest(folder, state.step);
    o.onStart?.();
    o.onResume?.({ epoch: state.epoch, step: state.step, changes: resumed.changes.slice(resumed.changes.length - resumed.added) });
  } else {
    o.onStart?.();
  }
  if (parallel) {
    // every rank starts where the leader does: its weights, momentum and place in the run
    await parallel.shareTensors([...net.params.map((p) => p.value), ...sgd.velocities]);
    ({ state, wallSeconds } = parallel.shareJson(parallel.leads ? { state, wallSeconds } : undefined));
    net.setRandomState(state.dropout[0]!);
  }
  const save = async (file: 'last' | 'best') => {
    if (folder) folder.writeCheckpoint(file, await snapshot(net, sgd, { ...state, dropout: [net.randomState()] }, settings));
  };
  const roles = trainingRoles(net);
  const { classes } = roles;
  const local = net.batch,
    first = net.firstExample;
  const x = new Float32Array(local * o.train.shape.reduce((a, b) => a * b));
  const y = new Float32Array(local);
  const size = o.train.count,
    batches = Math.floor(size / o.batch);
  const metrics: EpochMetrics[] = [];
  const stopHere = async (epochStart: number, seenAtStart: number): Promise<TrainResult> => {
    await save('last');
    const elapsed = (performance.now() - epochStart) / 1000;
    if (state.seen > 0)
      folder?.appendMetrics({
        ...epochSums(state),
        lr: state.schedule.lr,
        imagesPerSecond: rate(state.seen - seenAtStart, elapsed),
        wallSeconds: wallSeconds + elapsed,
        partial: true,
      });
    return { net, metrics, interrupted: true };
  };
  while (state.epoch < o.epochs) {
    const order = epochOrder(size, o.seed, state.epoch);
    const epochStart = performance.now();
    const seenAtStart = state.seen;
    for (; state.batchInEpoch < batches; state.batchInEpoch++) {
      await yieldToEvents(); // a signal's handler runs here, between two steps
      const stop = o.interrupted?.() === true || (o.stopAfterSteps !== undefined && state.step >= o.stopAfterSteps);
      if (parallel ? parallel.any(stop) : stop) return stopHere(epochStart, seenAtStart);
      const position = state.batchInEpoch * o.batch + first;
      await o.train.fill(order, position, position + local, x, y, { seed: o.seed, epoch: state.epoch, position, next: position + o.batch });
      state.schedule.lr = learningRateAt(o.schedule, state.schedule, o.lr, state.step, batches, batches * o.epochs);
      const result = await step(net, sgd, roles, x, y, state.schedule.lr, parallel);
      let correct = 0;
      for (let b = 0; b < local; b++) if (classesAbove(result.logits, b * classes, classes, y[b]!) === 0) correct++;
      const [lossSum, batchCorrect] = parallel
        ? parallel.sum(Float64Array.of(result.loss * local, correct))
        : [result.loss * local, correct];
      const loss = lossSum! / o.batch;
      state.firstLoss ??= loss;
      if (!(loss <= divergenceBound(classes, state.firstLoss))) throw new Diverged(divergence('the loss', loss, classes, state, o, folder));
      state.correct += batchCorrect!;
      state.lossSum += lossSum!;
      state.seen += o.batch;
      state.step++;
      const elapsed = (performance.now() - epochStart) / 1000;
      o.onProgress?.({
        epoch: state.epoch + 1,
        batch: state.batchInEpoch + 1,
        batches,
        loss,
        imagesPerSecond: rate(state.seen - seenAtStart, elapsed),
      });
    }
    const trainedSeconds = (performance.now() - epochStart) / 1000;
    let val;
    try {
      // data-parallel, the ranks split the validation images; a stop waits for the step's end
      const confusion = o.onValidation !== undefined;
      val = await evaluate(net, o.validation, parallel ? { shard: parallel, confusion } : { interrupted: o.interrupted, confusion });
    } catch (error) {
      if (error instanceof Interrupted) return stopHere(epochStart, seenAtStart);
      throw error;
    }
    if (!Number.isFinite(val.loss)) throw new Diverged(divergence('the validation loss', val.loss, classes, state, o, folder));
    wallSeconds += trainedSeconds;
    const m: EpochMetrics = {
      ...epochSums(state),
      valTop1Error: 1 - val.top1,
      valTop5Error: 1 - val.top5,
      valLoss: val.loss,
      lr: state.schedule.lr,
      imagesPerSecond: rate(state.seen - seenAtStart, trainedSeconds),
      wallSeconds,
    };
    metrics.push(m);
    folder?.appendMetrics(m);
    o.onEpoch?.(m);
    o.onValidation?.(val);
    state.schedule = afterEpoch(o.schedule, state.schedule, state.epoch + 1, m.valTop1Error);
    state = { ...state, epoch: state.epoch + 1, batchInEpoch: 0, lossSum: 0, correct: 0, seen: 0 };
    const isBest = state.best === null || m.valTop1Error < state.best;
    if (isBest) state = { ...state, best: m.valTop1Error, bestEpoch: state.epoch };
    await parallel?.checkSameWeights(`after epoch ${state.epoch}`);
    await save('last');
    if (isBest) folder?.copyCheckpoint('last', 'best'); // the same state: the same bytes
  }
  return { net, metrics, interrupted: false };
}

/** A crash between writing `last` and copying it to `best` leaves `best` one epoch behind. */
function repairBest(folder: RunStore, step: number): void {
  const current = folder.has('best') ? folder.checkpointState('best').step : undefined;
  if (current !== step) folder.copyCheckpoint('last', 'best');
}

function epochSums(state: RunState) {
  return { epoch: state.epoch + 1, step: state.step, loss: state.lossSum / state.seen, trainError: 1 - state.correct / state.seen };
}

function rate(images: number, seconds: number): number {
  return seconds > 0 ? images / seconds : 0;
}

/** Thrown when a run's loss runs away (its message says where and with which settings); the last
 * good checkpoint is kept. */
export class Diverged extends Error {}

/** A batch's mean loss 100 times what guessing scores (ln(classes)) or the run's first loss,
 * whichever is larger, is a run that has diverged, not one that learns: the paper's net at a
 * learning rate meant for another batch size reached 2.5e12 after an epoch, while healthy runs
 * start near ln(classes), or higher from another task's weights (103 for a 2-class classifier on
 * a random Caffe-layout net's features), and fall. */
export function divergenceBound(classes: number, firstLoss = 0): number {
  return 100 * Math.max(Math.log(Math.max(classes, 2)), Number.isFinite(firstLoss) ? firstLoss : 0);
}

function divergence(what: string, loss: number, classes: number, state: RunState, o: TrainOptions, folder?: RunStore): string {
  const last = !folder
    ? `in ${o.outDir} on rank 0`
    : folder.has('last')
      ? folder.describe('last')
      : 'none (it diverged in the first epoch)';
  const settings =
    `${o.recipe ? `recipe ${o.recipe}, ` : ''}learning rate ${formatNumber(state.schedule.lr)}, momentum ${o.momentum}, ` +
    `weight decay ${o.weightDecay}, batch ${o.batch}, init ${o.initFrom ? `from ${o.initFrom.source}` : o.init}`;
  const bound = divergenceBound(classes, state.firstLoss);
  const value = Number.isFinite(loss) ? `${formatNumber(loss)}, over ${formatNumber(bound)}` : String(loss);
  return (
    `${what} became ${value} at epoch ${state.epoch + 1}, step ${state.step + 1} (${settings}): ` +
    `the run diverged; lower --lr or --momentum, or check the data. The last good checkpoint is ${last}`
  );
}

async function snapshot(net: Net, sgd: Sgd, state: RunState, options: RunOptions): Promise<Checkpoint> {
  const params = await net.readParams();
  const velocities: Checkpoint['velocities'] = {};
  for (const [i, p] of net.params.entries()) velocities[p.name] = { shape: p.shape, data: await sgd.velocities[i]!.read() };
  return {
    spec: net.spec,
    params: Object.fromEntries(net.params.map((p) => [p.name, { shape: p.shape, data: params[p.name]! }])),
    velocities,
    state: { ...ordered(state), options },
  };
}

function restore(net: Net, sgd: Sgd, checkpoint: Checkpoint, path: string): RunState {
  const velocities = net.params.map((p) => {
    const v = checkpoint.velocities?.[p.name];
    if (!v) throw new Error(`${path}: no momentum for ${p.name}`);
    return v.data;
  });
  const state = checkpoint.state as unknown as RunState & { dropout: PhiloxState | PhiloxState[]; wallSeconds?: number };
  for (const field of ['epoch', 'batchInEpoch', 'step', 'lossSum', 'correct', 'seen'] as const) {
    if (typeof state[field] !== 'number' || !(state[field] >= 0)) throw new Error(`${path}: its run state has no valid '${field}'`);
  }
  const dropout = Array.isArray(state.dropout) ? state.dropout : [state.dropout]; // a list since data-parallel runs
  if (dropout.length !== 1)
    throw new Error(`${path} is from a data-parallel run of ${dropout.length} replicas, which this version does not continue`);
  try {
    net.loadParams(Object.fromEntries(Object.entries(checkpoint.params).map(([k, t]) => [k, t.data])));
    sgd.velocities.forEach((v, i) => v.write(velocities[i]!));
    net.setRandomState(dropout[0]!);
  } catch (error) {
    throw new Error(`${path} does not match the model: ${(error as Error).message}`, { cause: error });
  }
  return ordered({ ...state, dropout }); // older checkpoints also kept the wall time: it made identical runs differ
}

/** The fields of a run state in one order: a resumed run writes the same bytes as an unbroken one. */
function ordered(s: RunState): RunState {
  const { epoch, batchInEpoch, step, schedule, dropout, firstLoss, best, bestEpoch, lossSum, correct, seen } = s;
  return {
    epoch,
    batchInEpoch,
    step,
    schedule,
    dropout,
    ...(firstLoss === undefined ? {} : { firstLoss }),
    best,
    ...(bestEpoch === undefined ? {} : { bestEpoch }),
    lossSum,
    correct,
    seen,
  };
}
