/**
 * Checkpoints: tensors in safetensors (parameters under their own names — for the torchvision
 * variant exactly PyTorch's state_dict names — and optimizer state under `velocity.<name>`), run
 * state as JSON metadata. Written atomically: a temporary file, then a rename, so an interrupted
 * write never leaves a half checkpoint behind.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { NetSpec } from '../net/spec.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';

export interface Checkpoint {
  spec: NetSpec;
  params: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;
  velocities?: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;
  /** Anything JSON: optimizer settings, schedule, epoch, random state, metrics. */
  state: Record<string, unknown>;
}

export function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  const tensors: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = { ...checkpoint.params };
  for (const [name, t] of Object.entries(checkpoint.velocities ?? {})) tensors[`velocity.${name}`] = t;
  const bytes = serializeSafetensors(tensors, { format: 'alexnet-ts/1', spec: JSON.stringify(checkpoint.spec), state: JSON.stringify(checkpoint.state) });
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, path);
}

export function readCheckpoint(path: string): Checkpoint {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read checkpoint ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const { tensors, metadata } = parseSafetensors(bytes, path);
  if (metadata.format !== 'alexnet-ts/1' || !metadata.spec) throw new Error(`${path}: not an alexnet-ts checkpoint (no net spec in its metadata)`);
  const params: Checkpoint['params'] = {};
  const velocities: Checkpoint['velocities'] = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith('velocity.')) velocities[name.slice('velocity.'.length)] = t;
    else params[name] = t;
  }
  return { spec: JSON.parse(metadata.spec) as NetSpec, params, velocities, state: JSON.parse(metadata.state ?? '{}') as Record<string, unknown> };
}
