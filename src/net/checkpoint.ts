/**
 * Checkpoints: tensors in safetensors (parameters under the net's names, `conv1.weight` — the zoo's
 * torchvision variant too, which torchvision calls `features.0.weight` — and optimizer state under
 * `velocity.<name>`), run
 * state as JSON metadata. Written atomically (io/files.ts), so an interrupted write never leaves a
 * half checkpoint behind. Read completely validated: the safetensors layout, the spec, every
 * parameter against the spec's shapes, the momentum against the parameters, the metadata's JSON.
 */
import { readSync } from 'node:fs';
import { readFileBytes, withOpenFile, writeFileAtomic } from '../io/files.js';
import { parseSafetensors, safetensorsHeaderLength, safetensorsMetadata, serializeSafetensors } from '../io/safetensors.js';
import { formatShape } from '../tensor.js';
import { paramShapes } from './net.js';
import type { NetSpec } from './spec.js';

type Tensors = Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;

export interface Checkpoint {
  spec: NetSpec;
  params: Tensors;
  velocities?: Tensors;
  /** Anything JSON: the run's position, schedule and random state, and its `options`. */
  state: Record<string, unknown>;
}

const FORMAT = 'alexnet-ts/1';

/** A run folder's checkpoints: the last epoch's (or the point a run stopped at), and the best one's. */
export const RUN_CHECKPOINTS = { last: 'last.safetensors', best: 'best.safetensors' } as const;

export function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  writeFileAtomic(path, encodeCheckpoint(checkpoint));
}

/** A checkpoint's bytes: what `writeCheckpoint` stores, and what a page offers to download. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const tensors: Tensors = { ...checkpoint.params };
  for (const [name, t] of Object.entries(checkpoint.velocities ?? {})) tensors[`velocity.${name}`] = t;
  const metadata = { format: FORMAT, spec: JSON.stringify(checkpoint.spec), state: JSON.stringify(checkpoint.state) };
  return serializeSafetensors(tensors, metadata);
}

export function readCheckpoint(path: string): Checkpoint {
  return decodeCheckpoint(readFileBytes(path, 'checkpoint'), path);
}

/** A checkpoint from its bytes, checked as `readCheckpoint` checks a file; `path` names it in errors. */
export function decodeCheckpoint(bytes: Uint8Array, path: string): Checkpoint {
  const { tensors, metadata } = parseSafetensors(bytes, path);
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

/** A checkpoint's spec and run state without reading its tensors: what `--resume` defaults to. */
export function readCheckpointHeader(path: string): Pick<Checkpoint, 'spec' | 'state'> {
  return specAndState(readSafetensorsMetadata(path, 'checkpoint'), path);
}

/** A safetensors file's metadata, from its header alone (a checkpoint's is small; its tensors are not). */
function readSafetensorsMetadata(path: string, what: string): Record<string, string> {
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
