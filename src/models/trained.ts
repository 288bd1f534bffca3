/** A trained model from a run folder (its best checkpoint, else its last) or a checkpoint file. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { readCheckpoint, runOptionsOf } from '../io/checkpoint.js';
import { Net } from '../net/net.js';
import { netRoles, type NetRoles } from '../net/roles.js';
import { RUN_FILES } from '../train/run-folder.js';

export interface TrainedModel extends NetRoles {
  net: Net;
  /** The checkpoint it came from. */
  path: string;
  /** The normalisation it was trained with: (x/255 − mean)/std. */
  mean: number;
  std: number;
  classNames?: string[];
}

/** Builds the checkpoint's net for a batch on a backend and loads its weights, all checked. */
export function openTrained(model: string, options: { batch: number; backend: Backend }): TrainedModel {
  const path = statSync(model, { throwIfNoEntry: false })?.isDirectory() ? runCheckpoint(model) : model;
  const checkpoint = readCheckpoint(path);
  const run = runOptionsOf(checkpoint, path);
  const net = Net.build(checkpoint.spec, options);
  net.loadTensors(checkpoint.params);
  const roles = netRoles(net);
  const names = run.classNames;
  if (names && names.length !== roles.classes)
    throw new Error(`${path}: ${names.length} class names for a model of ${roles.classes} classes`);
  return { net, path, ...roles, mean: run.mean ?? 0, std: run.std ?? 1, ...(names ? { classNames: names } : {}) };
}

function runCheckpoint(dir: string): string {
  for (const file of [RUN_FILES.best, RUN_FILES.last]) if (existsSync(join(dir, file))) return join(dir, file);
  throw new Error(`${dir} holds no checkpoint (${RUN_FILES.best} or ${RUN_FILES.last})`);
}
