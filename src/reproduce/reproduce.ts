/**
 * `alexnet reproduce`: the paper's claims as training runs. Every arm of every experiment trains in
 * a run folder of its own (DIR/runs/DATASET/ARM/seed-N), so an interrupted reproduction resumes
 * each run exactly where it stopped and skips finished ones; each finished run's numbers are in its
 * folder's result.json. Then the report (report.ts) reads them all.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { type BatchSource, type ColourComponents, colourComponents, imageSetBatches } from '../data/batches.js';
import { firstImages, imageCount, type ImageSet, loadDataset, pixelStatistics, splitValidation } from '../data/dataset.js';
import { readFileBytes, writeFileAtomic } from '../io/files.js';
import { RUN_CHECKPOINTS } from '../net/checkpoint.js';
import type { initializers } from '../net/init.js';
import type { Net } from '../net/net.js';
import { evaluate, type EvalResult, paddedTestViews } from '../train/evaluate.js';
import { readMetricsFile, RUN_FILES } from '../train/run-folder.js';
import type { EpochMetrics } from '../train/run-store.js';
import { parseSchedule } from '../train/schedule.js';
import { Diverged, train, type TrainOptions } from '../train/trainer.js';
import { type Arm, type ArmSettings, type DataShape, ablationArms, biasArms, curveArms, type Scale } from './arms.js';

/** The claims a reproduction can be limited to (`--only`). */
export const CLAIMS = ['relu', 'lrn', 'pooling', 'dropout', 'augmentation', 'columns', 'biases', 'filters', 'neighbours'] as const;
export type Claim = (typeof CLAIMS)[number];

/** The ablation arms each claim compares (the reference arm among them). */
const ARMS_OF: Partial<Record<Claim, string[]>> = {
  lrn: ['reference', 'no-lrn'],
  pooling: ['reference', 'pool-2x2'],
  dropout: ['reference', 'no-dropout'],
  augmentation: ['reference', 'no-augmentation', 'no-pca'],
  columns: ['reference', 'one-column-half', 'one-column-full'],
  filters: ['reference'],
  neighbours: ['reference'],
};

/** A dataset the experiments train on, as loaded once for all of them. */
export interface Prepared extends DataShape {
  name: string;
  /** Its folder. */
  dir: string;
  train: ImageSet;
  validation: ImageSet;
  test: ImageSet;
  mean: number;
  std: number;
  classNames?: string[];
  /** Colour sets: the principal components of their RGB values, for the colour noise. */
  components?: ColourComponents;
}

export interface ErrorRates {
  top1Error: number;
  top5Error: number;
  loss: number;
}

/** What one finished run left (its folder's result.json). */
export interface RunResult {
  dataset: string;
  arm: string;
  seed: number;
  describe: string;
  net: string;
  settings: ArmSettings;
  metrics: EpochMetrics[];
  /** On the training images as they are (no crops, flips or dropout). */
  train: ErrorRates;
  /** On the test images, centre view. */
  test: ErrorRates;
  /** The paper's ten test patches, averaged. */
  tenPatch?: ErrorRates;
  /** Each step's loss, for arms that trace the early stages of learning. */
  stepLosses?: number[];
  /** Training time (evaluation excluded). */
  wallSeconds: number;
  /** Why the run stopped early, when its loss ran away: its errors are then chance's. */
  diverged?: string;
}

export const RESULT_FILE = 'result.json';

/**
 * The training images of a reproduction: a fixed validation hold-out and a fixed subset of the
 * rest (the same for every arm and seed), and the start of the test set.
 */
export function prepareDataset(name: string, dir: string, scale: Scale): Prepared {
  const { train: all, test } = loadDataset(dir);
  const held = splitValidation(all, scale.validationImages, 0);
  const count = Math.min(scale.trainImages, imageCount(held.train));
  const train = firstImages(held.train, count, `${all.source} (${count} training images)`);
  const testSubset = firstImages(test, scale.testImages);
  const { mean, std } = pixelStatistics(train);
  return {
    name,
    dir,
    train,
    validation: held.validation,
    test: testSubset,
    mean,
    std,
    shape: all.shape,
    classes: all.classes,
    ...(all.classNames ? { classNames: all.classNames } : {}),
    ...(all.shape[0] === 3 ? { components: colourComponents(train) } : {}),
  };
}

export interface RunContext {
  backend: Backend;
  out: string;
  interrupted?: () => boolean;
  onProgress?: (p: { epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }) => void;
}

export function runFolder(out: string, dataset: string, arm: string, seed: number): string {
  return join(out, 'runs', dataset, arm, `seed-${seed}`);
}

export function readResult(folder: string): RunResult | undefined {
  const path = join(folder, RESULT_FILE);
  return existsSync(path) ? readJson<RunResult>(path, 'delete it to train that run again') : undefined;
}

/** A JSON file the reproduction wrote; one line naming it when it is not JSON. */
export function readJson<T>(path: string, remedy: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(readFileBytes(path, 'reproduction file'))) as T;
  } catch (error) {
    throw new Error(`${path} is not valid JSON (${(error as Error).message}): ${remedy}`, { cause: error });
  }
}

/** The normalisation an arm's inputs get. */
function normalisation(d: Prepared, s: ArmSettings): { mean: number; std: number } {
  return s.inputs === 'pixels' ? { mean: d.mean, std: 1 / 255 } : { mean: d.mean, std: d.std };
}

/** What an arm trains on, what its run records, and how its trained net is scored. */
export interface ArmData {
  classes: number;
  train: BatchSource;
  validation: BatchSource;
  record: Pick<TrainOptions, 'augment' | 'mean' | 'std' | 'preprocess' | 'classNames'>;
  score(net: Net): Promise<Pick<RunResult, 'train' | 'test' | 'tenPatch'>>;
}

/**
 * One arm at one seed: its result.json when it finished before; else trained (resumed from its last
 * checkpoint when it has one, but for traced arms, which start over to keep every step's loss) and
 * scored. Undefined when interrupted (the run then resumes next time).
 */
export async function trainArm(
  ctx: RunContext,
  dataset: string,
  arm: Arm,
  seed: number,
  data: () => Promise<ArmData> | ArmData,
): Promise<RunResult | undefined> {
  const s = arm.settings;
  const folder = runFolder(ctx.out, dataset, arm.name, seed);
  const done = readResult(folder);
  if (done) return done;
  const d = await data(); // opened only for a run still to train: a folder of photos is decoded
  const resume = !arm.trace && existsSync(join(folder, RUN_CHECKPOINTS.last));
  if (!resume && existsSync(folder)) rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  const stepLosses: number[] = [];
  const finish = (scores: Pick<RunResult, 'train' | 'test' | 'tenPatch' | 'diverged'>): RunResult => {
    const path = join(folder, RUN_FILES.metrics);
    const metrics = existsSync(path) ? readMetricsFile(path) : [];
    const result: RunResult = {
      dataset,
      arm: arm.name,
      seed,
      describe: arm.describe,
      net: arm.spec.name ?? arm.name,
      settings: s,
      metrics,
      ...scores,
      ...(arm.trace ? { stepLosses } : {}),
      wallSeconds: metrics.at(-1)?.wallSeconds ?? 0,
    };
    writeFileAtomic(join(folder, RESULT_FILE), JSON.stringify(result, null, 1));
    return result;
  };
  let trained;
  try {
    trained = await train({
      spec: arm.spec,
      backend: ctx.backend,
      train: d.train,
      validation: d.validation,
      outDir: folder,
      epochs: s.epochs,
      batch: s.batch,
      lr: s.lr,
      momentum: s.momentum,
      weightDecay: s.weightDecay,
      schedule: parseSchedule(s.schedule, s.epochs),
      seed,
      init: s.init as keyof typeof initializers,
      ...d.record,
      ...(resume ? { resume: true } : { force: true }),
      ...(ctx.interrupted ? { interrupted: ctx.interrupted } : {}),
      onProgress: (p) => {
        if (arm.trace) stepLosses.push(p.loss);
        ctx.onProgress?.(p);
      },
    });
  } catch (error) {
    if (!(error instanceof Diverged)) throw error;
    const chance: ErrorRates = { top1Error: 1 - 1 / d.classes, top5Error: Math.max(0, 1 - 5 / d.classes), loss: Math.log(d.classes) };
    return finish({ train: chance, test: chance, diverged: error.message });
  }
  try {
    return trained.interrupted ? undefined : finish(await d.score(trained.net));
  } finally {
    trained.net.dispose();
  }
}

/** One arm at one seed on an in-memory dataset (`trainArm`). */
export function runArm(ctx: RunContext, d: Prepared, arm: Arm, seed: number): Promise<RunResult | undefined> {
  const s = arm.settings;
  const { mean, std } = normalisation(d, s);
  return trainArm(ctx, d.name, arm, seed, () => ({
    classes: d.classes,
    train: imageSetBatches(d.train, mean, std, {
      pad: s.cropPad,
      flip: s.flip,
      ...(s.pca && d.components ? { pca: { sigma: s.pca, components: d.components } } : {}),
    }),
    validation: imageSetBatches(d.validation, mean, std, { pad: 0, flip: false }),
    record: {
      augment: { pad: s.cropPad, flip: s.flip, ...(s.pca ? { pca: s.pca } : {}) },
      mean,
      std,
      ...(d.classNames ? { classNames: d.classNames } : {}),
    },
    score: (net) => score(net, d, arm, { mean, std }),
  }));
}

/** Error rates (1 − accuracy) and the loss of an evaluation. */
export const errorRates = (r: EvalResult): ErrorRates => ({ top1Error: 1 - r.top1, top5Error: 1 - r.top5, loss: r.loss });

async function score(net: Net, d: Prepared, arm: Arm, { mean, std }: { mean: number; std: number }) {
  const plain = { pad: 0, flip: false };
  const train = errorRates(await evaluate(net, imageSetBatches(d.train, mean, std, plain)));
  const test = imageSetBatches(d.test, mean, std, plain);
  if (!arm.tenPatch) return { train, test: errorRates(await evaluate(net, test)) };
  // the crops the reference arm trained on: the image padded by 2 pixels
  const ten = await evaluate(net, test, { views: paddedTestViews(2, -mean / std) });
  return { train, test: errorRates(ten.singleView!), tenPatch: errorRates(ten) };
}

/** The runs of a reproduction, in order: Figure 1's sweep first (its chosen rates decide the rest of
 * its runs), then the ablations seed by seed, then the bias runs. */
export interface Planned {
  dataset: Prepared;
  arm: Arm;
  seed: number;
}

export function plannedAblations(d: Prepared, scale: Scale, claims: readonly Claim[]): Planned[] {
  const wanted = new Set(claims.flatMap((c) => ARMS_OF[c] ?? []));
  const arms = ablationArms(d, scale).filter((a) => wanted.has(a.name));
  const runs: Planned[] = [];
  for (let seed = 1; seed <= scale.seeds; seed++) for (const arm of arms) runs.push({ dataset: d, arm, seed });
  if (claims.includes('biases'))
    for (let seed = 1; seed <= scale.seeds; seed++) for (const arm of biasArms(d, scale)) runs.push({ dataset: d, arm, seed });
  return runs;
}

/** Figure 1's sweep: every rate for both activations on the first seed. */
export function plannedSweep(d: Prepared, scale: Scale): Planned[] {
  return scale.curveRates.flatMap((lr) => curveArms(d, scale, lr).map((arm) => ({ dataset: d, arm, seed: 1 })));
}

/** The fractional epoch at which a per-epoch series first reaches `threshold` (linear between
 * epochs, from `start` at epoch 0), or undefined when it never does. */
export function epochsTo(series: number[], threshold: number, start: number): number | undefined {
  let previous = start;
  for (const [i, value] of series.entries()) {
    if (value <= threshold) return value === previous ? i + 1 : i + (previous - threshold) / (previous - value);
    previous = value;
  }
  return undefined;
}

/** The sweep's best rate for one activation: fewest epochs to the threshold, then the lowest final
 * training error. */
export function chosenRate(sweep: RunResult[], activation: 'relu' | 'tanh', threshold: number, classes: number): number {
  const runs = sweep.filter((r) => r.arm.startsWith(`${activation}-`));
  if (runs.length === 0) throw new Error(`no ${activation} runs in the sweep`);
  const key = (r: RunResult) => [
    r.diverged
      ? Infinity
      : (epochsTo(
          r.metrics.map((m) => m.trainError),
          threshold,
          1 - 1 / classes,
        ) ?? Infinity),
    r.metrics.at(-1)?.trainError ?? Infinity,
  ];
  const best = runs.reduce((a, b) => {
    const [ea, fa] = key(a),
      [eb, fb] = key(b);
    return eb! < ea! || (eb === ea && fb! < fa!) ? b : a;
  });
  return best.settings.lr;
}
