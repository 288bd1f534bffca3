/**
 * What a new or resumed training run trains on what: the data from its folder (IDX, CIFAR, a
 * store, or photos decoded in memory), the net (a given spec, the model fine-tuning starts from
 * with its classifier sized for the data, or the zoo's net for the data), the starting weights and
 * the frozen layers — checked against each other before anything trains.
 */
import { isPhotoFolder } from '../data/dataset.js';
import { listPhotos, type PhotoDataset } from '../data/photos.js';
import { type Preprocess, uniformNormalisation } from '../data/preprocess.js';
import { models, defaultModelFor, resolveModel } from '../models/index.js';
import { readModel } from '../models/open.js';
import { planNet } from '../net/net.js';
import { classifierLayer, replaceClasses, specClasses, withLoss } from '../net/roles.js';
import type { NetSpec } from '../net/spec.js';
import { type DataOptions, openTrainingData, storeOf, type TrainingData } from './data.js';

export interface RunSetupOptions extends Omit<DataOptions, 'inputSize'> {
  /** The dataset folder, store or list file. */
  data: string;
  /** A zoo name or JSON spec to train (`--model`). */
  model?: string;
  /** The net of a run being resumed. */
  spec?: NetSpec;
  /** Fine-tuning: the model whose weights start the run (any kind `readModel` opens). */
  initFrom?: string;
  arch?: string;
  /** Every layer with parameters but the classifier (true), or the layers named. */
  freeze?: true | string[];
  resume?: boolean;
  /** Told when a folder of photos is about to be decoded in memory. */
  onPhotos?: (dataset: PhotoDataset) => void;
  /** How the `initFrom` model is read (`initialModel`): a data-parallel run's other ranks take the
   * leader's net and preprocessing without the weights, which the leader then gives them. */
  readInitial?: (source: string, arch?: string) => InitialModel;
}

/** The model a fine-tuning run starts from: its net made trainable, its weights, and how its
 * inputs were made. */
export interface InitialModel {
  spec: NetSpec;
  params?: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;
  normalisation?: { mean: number; std: number } | undefined;
  preprocess?: Preprocess | undefined;
}

export interface RunSetup {
  spec: NetSpec;
  data: TrainingData;
  initFrom?: { source: string; params?: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> };
  frozen?: string[];
}

export async function setUpRun(o: RunSetupOptions): Promise<RunSetup> {
  const source = o.initFrom && !o.resume ? (o.readInitial ?? initialModel)(o.initFrom, o.arch) : undefined;
  const store = storeOf(o.data);
  const photos = !store && isPhotoFolder(o.data) ? listPhotos(o.data) : undefined;
  const photoClasses = store?.classIds.length ?? photos?.classIds.length;
  // photos are cropped to the model's input, so their model comes first; small images' model is
  // the one for their size, so it comes after them
  const photoSpec =
    photoClasses !== undefined ? (o.spec ?? modelToTrain(o.model, source?.spec, { classes: photoClasses, source: o.data })) : undefined;
  if (photos) o.onPhotos?.(photos);
  const data = await openTrainingData(o.data, {
    ...o,
    ...(photos ? { photos } : {}),
    normalisation: o.normalisation ?? source?.normalisation,
    preprocess: o.preprocess ?? source?.preprocess,
    ...(photoSpec ? { inputSize: inputSide(photoSpec) } : {}),
  });
  const small = { classes: data.classes, source: data.train.source, shape: data.train.shape };
  const spec = photoSpec ?? o.spec ?? modelToTrain(o.model, source?.spec, small);
  return {
    spec,
    data,
    ...(o.initFrom ? { initFrom: { source: o.initFrom, ...(source?.params ? { params: source.params } : {}) } } : {}),
    ...(o.freeze ? { frozen: frozenLayers(o.freeze, spec) } : {}),
  };
}

/** The model `--init-from` names: its weights, its net made trainable, and how its inputs were
 * made — a store's photos are then normalised as the model's (torchvision's, Caffe's BGR…), small
 * images when that is one mean and deviation. */
export function initialModel(source: string, arch?: string): InitialModel {
  const model = readModel(source, { arch });
  if (!model.params) throw new Error(`--init-from ${source}: ${model.kind === 'zoo' ? 'a zoo architecture' : 'a net spec'} has no weights`);
  const p: Preprocess | undefined = model.preprocess;
  const uniform = p && p.channels !== 'bgr' && new Set(p.mean).size === 1 && new Set(p.std).size === 1;
  return {
    spec: withLoss(model.spec),
    params: model.params,
    normalisation: uniform ? uniformNormalisation(p, source) : undefined,
    preprocess: p,
  };
}

/** The net a new run trains: `model`, else the --init-from model, else the zoo's net for the data
 * (the scaled AlexNet for small images, the paper's for photos); its input must be the data's
 * images. A zoo net or the --init-from model gets a classifier sized for the data's classes; a
 * spec file must already have it (checked here, not at the first batch). */
function modelToTrain(
  model: string | undefined,
  initial: NetSpec | undefined,
  data: { classes: number; source: string; shape?: readonly number[] },
): NetSpec {
  const fresh = () => (data.shape ? defaultModelFor(data.shape, data.classes) : replaceClasses(models.alexnet!.spec(), data.classes));
  let spec = model ? resolveModel(model) : (initial ?? fresh());
  const classes = specClasses(spec);
  if (classes !== undefined && classes !== data.classes) {
    if (model && !models[model]) throw new Error(`${model} scores ${classes} classes, ${data.source} holds ${data.classes}`);
    spec = replaceClasses(spec, data.classes);
  }
  const input = Object.entries(spec.inputs).find(([, shape]) => shape.length === 3)?.[1];
  if (input && data.shape && input.join() !== data.shape.join())
    throw new Error(`the model takes ${input.join('×')} images, ${data.source} holds ${data.shape.join('×')}`);
  return spec;
}

/** The side of a spec's square RGB input (photos are cropped to it). */
export function inputSide(spec: NetSpec): number {
  const input = Object.values(spec.inputs).find((shape) => shape.length === 3);
  if (!input || input[0] !== 3 || input[1] !== input[2])
    throw new Error(`the model takes ${input?.join('×') ?? 'no'} images; photos are cropped to square RGB inputs`);
  return input[1]!;
}

/** `--freeze`: every layer with parameters but the classifier, or the layers named. */
function frozenLayers(freeze: true | string[], spec: NetSpec): string[] {
  const plan = planNet(spec, 1);
  const weighted = plan.layers.filter((l) => Object.keys(l.layer.paramDecls()).length > 0).map((l) => l.layer.spec.name);
  if (freeze === true) return weighted.filter((name) => name !== classifierLayer(spec)?.name);
  const unknown = freeze.filter((name) => !weighted.includes(name));
  if (unknown.length > 0)
    throw new Error(`--freeze: no layer with parameters named ${unknown.join(', ')} (layers: ${weighted.join(', ')})`);
  return freeze;
}
