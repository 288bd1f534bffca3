/**
 * A training run as a user asks for it (every option of `alexnet train`, typed) turned into what
 * `train` takes: a resumed run's recorded settings where the request gives none, the recipe's for
 * the rest (its learning rate scaled to the batch the data allows), the data opened and the net
 * chosen. The CLI parses options into a request and calls this; an application can do the same.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseClassNames } from '../data/dataset.js';
import type { PhotoDataset } from '../data/photos.js';
import type { Preprocess } from '../data/preprocess.js';
import { readCheckpointHeader, RUN_CHECKPOINTS } from '../net/checkpoint.js';
import type { initializers } from '../net/init.js';
import { specClasses } from '../net/roles.js';
import type { NetSpec } from '../net/spec.js';
import type { TrainingData } from './data.js';
import { defaultRecipe, type ResolvedSettings, resolveSettings, SETTING_NAMES, type TrainingSettings } from './recipes.js';
import type { RunOptions } from './run-options.js';
import { parseSchedule } from './schedule.js';
import { type RunSetupOptions, setUpRun } from './setup.js';
import type { TrainOptions } from './trainer.js';

export interface TrainRequest extends Partial<TrainingSettings> {
  /** A dataset folder (IDX, CIFAR), a prepared store, or a folder of photos. */
  data: string;
  /** The run folder. */
  out: string;
  /** A zoo name or a JSON spec file; default: the data's (or --init-from's) net. */
  model?: string;
  /** The recipe for every setting not given; default: the model's (`defaultRecipe`). */
  recipe?: string;
  /** Training images held out for validation; default: the data's own val split, else 10 %. */
  val?: number;
  seed?: number;
  classes?: number;
  /** A file (one name per line), a comma-separated list, or the names. */
  classNames?: string | string[];
  initFrom?: string;
  arch?: string;
  freeze?: true | string[];
  loaders?: number;
  resume?: boolean;
  force?: boolean;
  /** With `resume`: the settings that may differ from the run's (settings.ts). */
  override?: string[];
}

/** Settings a request may give, by the name the CLI's options and `TrainRequest` share. */
type Given = (setting: string) => boolean;

/** A request completed from the run it resumes: each setting the request does not give is the
 * run's own, its net included. */
interface Resumed {
  request: TrainRequest;
  /** The settings taken from the run. */
  stored: string[];
  spec: NetSpec;
  normalisation?: { mean: number; std: number };
  preprocess?: Preprocess;
}

/** The spec and run state of the run in `out` that `--resume` continues. */
export function runToResume(out: string): RunHeader {
  const last = join(out, RUN_CHECKPOINTS.last);
  if (!existsSync(last)) throw new Error(`--resume: ${out} holds no ${RUN_CHECKPOINTS.last} to continue from`);
  return readCheckpointHeader(last);
}

export type RunHeader = ReturnType<typeof readCheckpointHeader>;

function resumed(request: TrainRequest, given: Given, read: (out: string) => RunHeader): Resumed {
  const { spec, state } = read(request.out);
  const run = (state.options ?? {}) as Partial<RunOptions>;
  const recorded: Record<string, unknown> = {
    epochs: run.epochs,
    batch: run.batch,
    lr: run.lr,
    momentum: run.momentum,
    weightDecay: run.weightDecay,
    schedule: run.schedule,
    val: run.validationSplit ? undefined : run.validationImages,
    init: run.init,
    cropPad: run.augment?.pad,
    flip: run.augment?.flip,
    pca: run.augment?.pca,
    recipe: run.recipe,
    seed: run.seed,
    classNames: run.classNames,
    classes: specClasses(spec),
    initFrom: run.initFrom,
    freeze: run.frozen,
  };
  const kept = Object.entries(recorded).filter(([key, value]) => value !== undefined && !given(key));
  const fineTuned = run.initFrom !== undefined;
  return {
    request: { ...request, ...Object.fromEntries(kept) },
    stored: kept.map(([key]) => key),
    spec,
    ...(fineTuned && run.mean !== undefined && run.std !== undefined ? { normalisation: { mean: run.mean, std: run.std } } : {}),
    ...(fineTuned && run.preprocess ? { preprocess: run.preprocess } : {}),
  };
}

export interface TrainingPlan {
  spec: NetSpec;
  data: TrainingData;
  settings: ResolvedSettings;
  /** `train`'s options but for the backend and the callbacks. */
  options: Omit<TrainOptions, 'backend'>;
}

export interface PlanOptions {
  /** Which of the request's settings the user gave, where the request also holds defaults (the
   * CLI's); by default, every setting the request holds. */
  given?: Given;
  /** Told when a folder of photos is about to be decoded in memory, and how far that has got. */
  onPhotos?: (photos: PhotoDataset) => void;
  onProgress?: (p: { done: number; total: number; imagesPerSecond: number }) => void;
  /** How `--resume` reads the run it continues (`runToResume`): a data-parallel run's other ranks
   * take the leader's, so only its host needs the run folder. */
  readRun?: (out: string) => RunHeader;
  /** How `--init-from` is read (`initialModel`), as `RunSetupOptions.readInitial`. */
  readInitial?: RunSetupOptions['readInitial'];
}

/**
 * Opens the data and chooses the net and every setting of the run a request asks for. Throws one
 * line for a request that cannot run.
 */
export async function planTraining(request: TrainRequest, options: PlanOptions = {}): Promise<TrainingPlan> {
  const { onPhotos, onProgress, readInitial } = options;
  const hooks = { ...(onPhotos ? { onPhotos } : {}), ...(onProgress ? { onProgress } : {}), ...(readInitial ? { readInitial } : {}) };
  const given: Given = options.given ?? ((key) => (request as unknown as Record<string, unknown>)[key] !== undefined);
  if (request.resume && request.force) throw new Error('--resume continues a run and --force starts it over: give one of them');
  if (request.override && !request.resume) throw new Error('--override only applies with --resume');
  const run = request.resume ? resumed(request, given, options.readRun ?? runToResume) : undefined;
  const r = run?.request ?? request;
  const settingsGiven = Object.fromEntries(
    SETTING_NAMES.filter((key) => r[key] !== undefined && (given(key) || run?.stored.includes(key))).map((key) => [key, r[key]]),
  ) as Partial<TrainingSettings>;
  const recipe = r.recipe ?? defaultRecipe(r);
  const augment = resolveSettings(recipe, settingsGiven).settings;
  const names = r.classNames === undefined ? undefined : Array.isArray(r.classNames) ? r.classNames : parseClassNames(r.classNames);
  const seed = r.seed ?? 0;
  const { spec, data, initFrom, frozen } = await setUpRun({
    data: r.data,
    ...(r.model ? { model: r.model } : {}),
    ...(run && r.model === undefined ? { spec: run.spec } : {}),
    ...(r.initFrom ? { initFrom: r.initFrom } : {}),
    ...(r.arch ? { arch: r.arch } : {}),
    ...(r.freeze ? { freeze: r.freeze } : {}),
    resume: r.resume,
    val: r.val,
    seed,
    classes: r.classes,
    classNames: names,
    cropPad: augment.cropPad,
    flip: augment.flip,
    pca: augment.pca,
    loaders: r.loaders,
    ...(run?.normalisation ? { normalisation: run.normalisation } : {}),
    ...(run?.preprocess ? { preprocess: run.preprocess } : {}),
    ...hooks,
  });
  const settings = resolveSettings(recipe, settingsGiven, data.train.count);
  const s = settings.settings;
  return {
    spec,
    data,
    settings,
    options: {
      ...runOptionsFor(spec, data, s, seed, recipe),
      outDir: r.out,
      ...(initFrom ? { initFrom } : {}),
      ...(frozen ? { frozen } : {}),
      ...(r.resume ? { resume: true } : {}),
      ...(r.force ? { force: true } : {}),
      ...(r.override ? { overrides: r.override } : {}),
    },
  };
}

/** What a run of `spec` on `data` with settings `s` (a recipe's, resolved) gives the trainer,
 * where it keeps the run and how it starts aside: the CLI's runs and the browser app's alike. */
export function runOptionsFor(spec: NetSpec, data: TrainingData, s: TrainingSettings, seed: number, recipe: string) {
  return {
    spec,
    train: data.train,
    validation: data.validation,
    epochs: s.epochs,
    batch: s.batch,
    lr: s.lr,
    momentum: s.momentum,
    weightDecay: s.weightDecay,
    schedule: typeof s.schedule === 'string' ? parseSchedule(s.schedule, s.epochs) : s.schedule,
    seed,
    init: s.init as keyof typeof initializers,
    recipe,
    validationSplit: data.validationSplit,
    augment: data.augment,
    mean: data.mean,
    std: data.std,
    ...(data.preprocess ? { preprocess: data.preprocess } : {}),
    ...(data.classNames ? { classNames: data.classNames } : {}),
  };
}
