/**
 * One way to open a model, whatever the user holds: a zoo name, a JSON spec, a run folder or
 * checkpoint of ours, an ONNX file, or a PyTorch state_dict (`.pth`/`.pt` or `.safetensors`) of a
 * zoo architecture. Each becomes a spec, its weights under the spec's parameter names, and what the
 * weights expect: the preprocessing of photos and the class names.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { checkPreprocess, PRESETS, type Preprocess, uniformPreprocess } from '../data/preprocess.js';
import { type Checkpoint, decodeCheckpoint, RUN_CHECKPOINTS } from '../net/checkpoint.js';
import { readFileBytes } from '../io/files.js';
import { parsePth } from '../io/pth.js';
import { type NamedTensor, parseSafetensors } from '../io/safetensors.js';
import { ZipArchive } from '../io/zip.js';
import { Net, paramShapes, planNet } from '../net/net.js';
import { classifierLayer, netRoles, type NetRoles, replaceClasses, specClasses } from '../net/roles.js';
import type { NetSpec } from '../net/spec.js';
import { importOnnx } from '../onnx/import.js';
import { decodeModel } from '../onnx/proto.js';
import { formatShape } from '../tensor.js';
import { alexnetTorchvision } from './alexnet.js';
import { IMAGENET_CLASSES } from './imagenet-classes.js';
import { models, parseSpec, resolveModel } from './index.js';

type Tensors = Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;

export type ModelKind = 'zoo' | 'spec' | 'checkpoint' | 'onnx' | 'pytorch';

export interface ModelFile {
  kind: ModelKind;
  /** The file read (a run folder's checkpoint), or the zoo name. */
  source: string;
  spec: NetSpec;
  /** The weights, under the spec's parameter names; none for a zoo name or a spec. */
  params?: Tensors;
  /** How photos become inputs; unknown for an ONNX graph that neither records nor suggests it. */
  preprocess?: Preprocess;
  classNames?: string[];
  /** A checkpoint's run options. */
  run?: InferenceOptions;
}

export interface ReadOptions {
  /** For a state_dict whose names do not tell: a zoo name or a JSON spec with the file's names. */
  arch?: string;
  /** Overrides what the file records or suggests. */
  preprocess?: Preprocess;
}

/** The kinds `--model` accepts, for help texts. */
export const MODEL_KINDS =
  'a zoo name, a JSON spec, a run folder or checkpoint, an .onnx file, or a PyTorch state_dict (.pth/.pt or .safetensors)';

export function readModel(source: string, options: ReadOptions = {}): ModelFile {
  return completed(readModelFile(source, options), options);
}

/** `readModel` of a file's bytes (a page's file input): `name`, the file's name, tells its kind
 * where the bytes do not. */
export function readModelBytes(name: string, bytes: Uint8Array, options: ReadOptions = {}): ModelFile {
  return completed(modelFromBytes(name, bytes, options), options);
}

/** Checked weights, and what a model's weights expect: the preprocessing, and ImageNet's class
 * names for a 1000-class net with an ImageNet convention's preprocessing. */
function completed(file: ModelFile, options: ReadOptions): ModelFile {
  if (file.params) checkFinite(file.params, file.source);
  const preprocess = options.preprocess ?? file.preprocess;
  const classes = netClasses(file.spec);
  const imagenet = classes === 1000 && preprocess !== undefined && Object.values(PRESETS).includes(preprocess);
  const classNames = file.classNames ?? (imagenet ? [...IMAGENET_CLASSES] : undefined);
  return { ...file, ...(preprocess ? { preprocess } : {}), ...(classNames ? { classNames } : {}) };
}

/** A model's weights must be numbers: one NaN or infinity makes every output it reaches one too
 * (and a fused ReLU would hide it as 0). */
function checkFinite(params: Tensors, source: string): void {
  for (const [name, t] of Object.entries(params))
    for (let i = 0; i < t.data.length; i++)
      if (!Number.isFinite(t.data[i]))
        throw new Error(`${source}: parameter '${name}' holds ${t.data[i]} (element ${i}); a model's weights must be finite numbers`);
}

function readModelFile(source: string, options: ReadOptions): ModelFile {
  const zoo = models[source];
  if (zoo) return { kind: 'zoo', source, spec: zoo.spec(), ...(zoo.preprocess ? { preprocess: zoo.preprocess } : {}) };
  const stat = statSync(source, { throwIfNoEntry: false });
  if (!stat) {
    if (/[/\\]|\.\w+$/.test(source)) throw new Error(`cannot read model ${source}: no such file`);
    throw new Error(`unknown model '${source}' (known: ${Object.keys(models).join(', ')}; or ${MODEL_KINDS.replace(/^a zoo name, /, '')})`);
  }
  const path = stat.isDirectory() ? runCheckpoint(source) : source;
  return modelFromBytes(path, readFileBytes(path, 'model'), options);
}

function modelFromBytes(source: string, bytes: Uint8Array, options: ReadOptions): ModelFile {
  if (source.endsWith('.json')) return { kind: 'spec', source, spec: parseSpec(bytes, source) };
  if (source.endsWith('.onnx')) return onnxModel(source, bytes);
  const pth = /\.(pth|pt|bin|ckpt|tar)$/.test(source) || ZipArchive.recognise(bytes) || bytes[0] === 0x80;
  if (pth && !source.endsWith('.safetensors')) return readStateDict(source, parsePth(bytes, source), options.arch);
  if (source.endsWith('.safetensors') || looksLikeSafetensors(bytes)) {
    const { tensors, metadata } = parseSafetensors(bytes, source);
    if (metadata.format?.startsWith('alexnet-ts')) return checkpointModel(decodeCheckpoint(bytes, source), source);
    return { ...readStateDict(source, tensors, options.arch), ...described(metadata, source) };
  }
  throw new Error(`${source}: not a model file this reads (${MODEL_KINDS})`);
}

/** A net built for a batch on a backend, its weights loaded; what commands that run a model need. */
export interface OpenedModel extends NetRoles {
  net: Net;
  kind: ModelKind;
  path: string;
  preprocess?: Preprocess;
  classNames?: string[];
  run?: InferenceOptions;
}

/** The model's net, built for `batch` on `backend` with its weights; `inference` as `Net.build`'s (no gradients). */
export function openModel(source: string, options: ReadOptions & { batch: number; backend: Backend; inference?: boolean }): OpenedModel {
  const model = readModel(source, options);
  if (!model.params)
    throw new Error(`${source} is ${model.kind === 'zoo' ? 'a zoo architecture' : 'a net spec'} without weights: train it first`);
  const net = Net.build(model.spec, { ...options, weights: model.params });
  const roles = netRoles(net);
  if (model.classNames && model.classNames.length !== roles.classes)
    throw new Error(`${model.source}: ${model.classNames.length} class names for a model of ${roles.classes} classes`);
  const { params: _weights, spec: _spec, source: path, ...described } = model;
  return { net, path, ...roles, ...described };
}

/** What inference needs of a checkpoint's run options (train/run-options.ts): the normalisation and
 * the class names, type-checked; the other options as they are. */
export interface InferenceOptions {
  mean?: number;
  std?: number;
  preprocess?: Preprocess;
  classNames?: string[];
  [option: string]: unknown;
}

export function inferenceOptionsOf(checkpoint: Checkpoint, path: string): InferenceOptions {
  const options = checkpoint.state.options ?? {};
  if (typeof options !== 'object' || options === null) throw new Error(`${path}: its run options are not a JSON object`);
  const o = options as InferenceOptions;
  for (const field of ['mean', 'std'] as const) {
    if (o[field] !== undefined && !Number.isFinite(o[field])) throw new Error(`${path}: its run option '${field}' is not a number`);
  }
  if (o.std !== undefined && o.std <= 0) throw new Error(`${path}: its run option 'std' is ${o.std}, not positive`);
  if (o.preprocess !== undefined) checkPreprocess(o.preprocess, path);
  if (o.classNames !== undefined && !(Array.isArray(o.classNames) && o.classNames.every((n) => typeof n === 'string'))) {
    throw new Error(`${path}: its class names are not a list of strings`);
  }
  return o;
}

function checkpointModel(checkpoint: Checkpoint, path: string): ModelFile {
  const run = inferenceOptionsOf(checkpoint, path);
  const channels = Object.values(checkpoint.spec.inputs).find((shape) => shape.length === 3)?.[0] ?? 1;
  return {
    kind: 'checkpoint',
    source: path,
    spec: checkpoint.spec,
    params: checkpoint.params,
    preprocess: run.preprocess ?? uniformPreprocess(channels, run.mean ?? 0, run.std ?? 1),
    ...(run.classNames ? { classNames: run.classNames } : {}),
    run,
  };
}

function runCheckpoint(dir: string): string {
  for (const file of [RUN_CHECKPOINTS.best, RUN_CHECKPOINTS.last]) if (existsSync(join(dir, file))) return join(dir, file);
  throw new Error(`${dir} holds no checkpoint (${RUN_CHECKPOINTS.best} or ${RUN_CHECKPOINTS.last})`);
}

/** An ONNX graph: preprocessing and class names from its metadata when we wrote it; else the
 * layout suggests the convention (227-pixel input: Caffe's; 3×224×224: torchvision's). */
function onnxModel(path: string, bytes: Uint8Array): ModelFile {
  const imported = importOnnx(decodeModel(bytes, path), { source: path });
  const params = Object.fromEntries(Object.entries(imported.params).map(([name, data]) => [name, { shape: [], data }]));
  const input = Object.values(imported.spec.inputs)[0]!;
  const suggested = input.join() === '3,227,227' ? PRESETS.caffe : input.join() === '3,224,224' ? PRESETS.torchvision : undefined;
  const spec = withoutFinalSoftmax(imported.spec);
  return {
    kind: 'onnx',
    source: path,
    spec,
    params: shapedLike(params, spec),
    ...(suggested ? { preprocess: suggested } : {}),
    ...described(imported.metadata, path),
  };
}

/** The preprocessing and class names our exports record in a file's metadata. */
function described(metadata: Record<string, string>, path: string): Pick<ModelFile, 'preprocess' | 'classNames'> {
  const preprocess =
    metadata.preprocess === undefined ? undefined : checkPreprocess(parseJson(metadata.preprocess, path), `${path} metadata`);
  const names = metadata.classNames === undefined ? undefined : parseJson(metadata.classNames, path);
  if (names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === 'string')))
    throw new Error(`${path}: its metadata's classNames is not a list of strings`);
  return { ...(preprocess ? { preprocess } : {}), ...(names ? { classNames: names as string[] } : {}) };
}

/** A graph that ends in a softmax over [N, classes] (Caffe's `prob`) without it: the engine scores
 * logits, and `predict` takes their softmax itself. */
function withoutFinalSoftmax(spec: NetSpec): NetSpec {
  const plan = planNet(spec, 1);
  const last = plan.layers[plan.layers.length - 1]!;
  if (last.layer.spec.type !== 'softmax' || plan.shapes.get(last.inputs[0]!)!.length !== 2) return spec;
  return { ...spec, layers: spec.layers.slice(0, -1) };
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${path}: its metadata holds invalid JSON`);
  }
}

/** ONNX's flat parameter values with the spec's shapes. */
function shapedLike(params: Tensors, spec: NetSpec): Tensors {
  const shapes = paramShapes(spec);
  return Object.fromEntries(
    Object.entries(params).map(([name, t]) => [name, { shape: [...(shapes.get(name) ?? [t.data.length])], data: t.data }]),
  );
}

/**
 * A state_dict's architecture: `arch` when given (a zoo name or a JSON spec), else the zoo
 * architecture whose parameter names and shapes are the file's — torchvision's AlexNet at any
 * widths, or a zoo net under its own names — with the classifier sized as the file's.
 */
function readStateDict(source: string, tensors: Record<string, NamedTensor>, arch?: string): ModelFile {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  const candidates: [string, NetSpec, Preprocess | undefined][] = arch
    ? [[arch, resolveModel(arch), models[arch]?.preprocess]]
    : Object.entries(models).map(([name, zoo]) => [name, zoo.spec(), zoo.preprocess]);
  if (!arch && 'features.0.weight' in tensors)
    candidates.unshift(['alexnet-torchvision', torchvisionFromShapes(tensors), PRESETS.torchvision]);
  const matches = candidates.flatMap(([name, spec, preprocess]) => {
    const sized = classesOf(spec, tensors);
    const mismatch = shapeMismatch(sized, tensors);
    return mismatch === undefined ? [{ name, spec: sized, preprocess }] : arch ? fail(`is not a ${arch}: ${mismatch}`) : [];
  });
  const distinct = matches.filter((m, i) => matches.findIndex((n) => n.name === m.name) === i);
  if (distinct.length === 0) {
    const listed = Object.entries(tensors)
      .slice(0, 4)
      .map(([name, t]) => `${name} ${formatShape(t.shape)}`)
      .join(', ');
    return fail(`its tensors (${listed}, …) match no zoo architecture's names and shapes: give --arch a JSON spec with the file's names`);
  }
  if (distinct.length > 1) fail(`its names and shapes fit ${distinct.map((m) => m.name).join(' and ')}: say which with --arch`);
  const { spec, preprocess } = distinct[0]!;
  return { kind: 'pytorch', source, spec, params: tensors, ...(preprocess ? { preprocess } : {}) };
}

/** The spec with its classifier as wide as the file's (a fine-tuned net scores other classes). */
function classesOf(spec: NetSpec, tensors: Record<string, NamedTensor>): NetSpec {
  const classifier = classifierLayer(spec);
  const weight = classifier && tensors[`${classifier.name}.weight`];
  return weight && weight.shape.length === 2 ? replaceClasses(spec, weight.shape[0]!) : spec;
}

/** Why the tensors are not the spec's parameters, or undefined when they are exactly. */
function shapeMismatch(spec: NetSpec, tensors: Record<string, NamedTensor>): string | undefined {
  let shapes: Map<string, readonly number[]>;
  try {
    shapes = paramShapes(spec);
  } catch (error) {
    return (error as Error).message;
  }
  for (const [name, shape] of shapes) {
    const t = tensors[name];
    if (!t) return `it has no '${name}'`;
    if (formatShape(t.shape) !== formatShape(shape))
      return `'${name}' is ${formatShape(t.shape)}, the architecture's is ${formatShape(shape)}`;
  }
  const extra = Object.keys(tensors).find((name) => !shapes.has(name));
  return extra === undefined ? undefined : `it has '${extra}', which the architecture does not`;
}

/** torchvision's AlexNet with the widths the file's tensors have (a scaled copy loads as well). */
function torchvisionFromShapes(tensors: Record<string, NamedTensor>): NetSpec {
  const rows = (name: string) => tensors[`${name}.weight`]?.shape[0] ?? 1;
  const widths = ['features.0', 'features.3', 'features.6', 'features.8', 'features.10', 'classifier.1', 'classifier.4'].map(rows);
  const fc6Inputs = tensors['classifier.1.weight']?.shape[1] ?? 0;
  const pool = Math.round(Math.sqrt(fc6Inputs / widths[4]!));
  return alexnetTorchvision({ widths, pool: pool >= 1 ? pool : 6, classes: rows('classifier.6') });
}

/** The classes a spec scores: its loss layer's, else its last layer's output width. */
function netClasses(spec: NetSpec): number | undefined {
  const plan = planNet(spec, 1);
  const last = plan.layers[plan.layers.length - 1]!.outputs[0]!;
  return specClasses(spec) ?? plan.shapes.get(last)![1];
}

/** An 8-byte little-endian length, then a JSON object's `{`. */
function looksLikeSafetensors(head: Uint8Array): boolean {
  return head.length >= 9 && head[8] === 0x7b && head[6] === 0 && head[7] === 0;
}
