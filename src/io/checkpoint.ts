/**
 * Checkpoints: tensors in safetensors (parameters under the net's names, `conv1.weight` — the zoo's
 * torchvision variant too, which torchvision calls `features.0.weight` — and optimizer state under
 * `velocity.<name>`), run
 * state as JSON metadata. Written atomically (io/files.ts), so an interrupted write never leaves a
 * half checkpoint behind. Read completely validated: the safetensors layout, the spec, every
 * parameter against the spec's shapes, the momentum against the parameters, the metadata's JSON.
 */
import { readSync } from 'node:fs';
import { checkPreprocess, type Preprocess } from '../data/preprocess.js';
import { formatShape } from '../tensor.js';
import { paramShapes } from '../net/net.js';
import type { NetSpec } from '../net/spec.js';
import type { ScheduleSpec } from '../train/schedule.js';
import { readFileBytes, withOpenFile, writeFileAtomic } from './files.js';
import { parseSafetensors, safetensorsHeaderLength, safetensorsMetadata, serializeSafetensors } from './safetensors.js';

type Tensors = Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;

export interface Checkpoint {
  spec: NetSpec;
  params: Tensors;
  velocities?: Tensors;
  /** Anything JSON: the run's position, schedule and random state, and its `options`. */
  state: Record<string, unknown>;
}

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

const FORMAT = 'alexnet-ts/1';

export function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  const tensors: Tensors = { ...checkpoint.params };
  for (const [name, t] of Object.entries(checkpoint.velocities ?? {})) tensors[`velocity.${name}`] = t;
  const metadata = { format: FORMAT, spec: JSON.stringify(checkpoint.spec), state: JSON.stringify(checkpoint.state) };
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

export function readCheckpoint(path: string): Checkpoint {
  const { tensors, metadata } = parseSafetensors(readFileBytes(path, 'checkpoint'), path);
  const fail = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  const { spec, state } = specAndState(metadata, path);
  let shapes: Map<string, readonly number[]>;
  try {
    shapes = paramShapes(spec);
  } catch (error) {
    return fail(`its net spec is invalid: ${(error as Error).message}`);
  }
  const params: Tensors = {};
  const velocities: Tensors = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith('velocity.')) velocities[name.slice('velocity.'.length)] = t;
    else params[name] = t;
  }
  checkTensors(params, shapes, 'parameter', path);
  if (Object.keys(velocities).length > 0) checkTensors(velocities, shapes, 'momentum tensor', path);
  return { spec, params, velocities, state };
}

function parseJson(text: string, field: string, fail: (what: string) => never): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fail(`its metadata '${field}' is not valid JSON`);
  }
}

/** Every tensor the spec declares, with its shape, and no other. */
function checkTensors(tensors: Tensors, shapes: Map<string, readonly number[]>, what: string, path: string): void {
  const fail = (fault: string): never => {
    throw new Error(`${path} does not match its model: ${what} '${fault}`);
  };
  for (const [name, shape] of shapes) {
    const t = tensors[name];
    if (!t) fail(`${name}' is missing (${formatShape(shape)})`);
    if (formatShape(t!.shape) !== formatShape(shape)) fail(`${name}' is ${formatShape(t!.shape)}, its net spec says ${formatShape(shape)}`);
  }
  for (const name of Object.keys(tensors)) if (!shapes.has(name)) fail(`${name}' is not in its net spec`);
}

/** The run options stored in a checkpoint's state, with the fields inference needs type-checked. */
export function runOptionsOf(checkpoint: Checkpoint, path: string): Partial<RunOptions> {
  const options = checkpoint.state.options ?? {};
  if (typeof options !== 'object' || options === null) throw new Error(`${path}: its run options are not a JSON object`);
  const o = options as Partial<RunOptions>;
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

/** A checkpoint's spec and run state without reading its tensors: what `--resume` defaults to. */
export function readCheckpointHeader(path: string): Pick<Checkpoint, 'spec' | 'state'> {
  return specAndState(readSafetensorsMetadata(path, 'checkpoint'), path);
}

/** A safetensors file's metadata, from its header alone (a checkpoint's is small; its tensors are not). */
export function readSafetensorsMetadata(path: string, what: string): Record<string, string> {
  return withOpenFile(path, what, (fd, size) => {
    const first = new Uint8Array(8);
    readSync(fd, first, 0, 8, 0);
    const header = new Uint8Array(safetensorsHeaderLength(first, size, path));
    readSync(fd, header, 0, header.length, 8);
    return safetensorsMetadata(header, path);
  });
}

/** The net spec and run state a checkpoint's metadata holds, both parsed and checked. */
function specAndState(metadata: Record<string, string>, path: string): Pick<Checkpoint, 'spec' | 'state'> {
  const fail = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  if (metadata.format !== FORMAT || metadata.spec === undefined) fail('not an alexnet-ts checkpoint (no net spec in its metadata)');
  const spec = parseJson(metadata.spec!, 'spec', fail) as NetSpec;
  const state = parseJson(metadata.state ?? '{}', 'state', fail);
  if (typeof state !== 'object' || state === null || Array.isArray(state)) fail('its run state is not a JSON object');
  return { spec, state: state as Record<string, unknown> };
}
