/**
 * What the training loop drives: one SGD step on a batch, and the state a checkpoint needs.
 * `SingleNet` is one net on one backend (its kernels may use several threads); `ReplicaGroup`
 * (replicas.ts) splits each batch over replicas of the net, one per thread.
 */
import type { FloatArray } from '../backend/backend.js';
import type { Net } from '../net/net.js';
import { trainingRoles, type TrainingRoles } from '../net/roles.js';
import type { PhiloxState } from '../random.js';
import type { Sgd } from './sgd.js';

export interface StepResult {
  /** Mean loss over the batch. */
  loss: number;
  /** [batch, classes]. */
  logits: FloatArray;
}

export interface Learner {
  /** The net that evaluates and is saved (with several replicas: the first; all hold equal weights). */
  readonly net: Net;
  /** Its optimizer (velocities for checkpoints). */
  readonly sgd: Sgd;
  readonly replicas: number;
  /** Forward, backward and the SGD update at learning rate `lr` on a batch of images and labels. */
  step(x: Float32Array, y: Float32Array, lr: number): Promise<StepResult>;
  /** The dropout generators' positions, one per replica. */
  randomStates(): PhiloxState[];
  /** Sets every replica's weights, momentum and dropout generator. */
  load(params: Record<string, ArrayLike<number>>, velocities: ArrayLike<number>[], randomStates: PhiloxState[]): void;
  dispose(): Promise<void>;
}

/** Loads weights and momentum into one net and its optimizer. */
export function loadNet(
  net: Net,
  sgd: Sgd,
  params: Record<string, ArrayLike<number>>,
  velocities: ArrayLike<number>[],
  randomState: PhiloxState,
): void {
  net.loadParams(params);
  sgd.velocities.forEach((v, i) => v.write(velocities[i]!));
  net.setRandomState(randomState);
}

export class SingleNet implements Learner {
  readonly replicas = 1;
  private readonly roles: TrainingRoles;

  constructor(
    readonly net: Net,
    readonly sgd: Sgd,
  ) {
    this.roles = trainingRoles(net);
  }

  async step(x: Float32Array, y: Float32Array, lr: number): Promise<StepResult> {
    this.net.setInput(this.roles.data, x);
    this.net.setInput(this.roles.labels, y);
    this.sgd.lr = lr;
    this.net.forward({ training: true });
    this.net.backward();
    this.sgd.step();
    const [loss] = await this.net.read(this.roles.loss);
    return { loss: loss!, logits: await this.net.read(this.roles.logits) };
  }

  randomStates(): PhiloxState[] {
    return [this.net.randomState()];
  }

  load(params: Record<string, ArrayLike<number>>, velocities: ArrayLike<number>[], randomStates: PhiloxState[]): void {
    loadNet(this.net, this.sgd, params, velocities, randomStates[0]!);
  }

  async dispose(): Promise<void> {
    this.sgd.dispose();
  }
}
