/**
 * What the training loop drives: one SGD step on a batch, and the state a checkpoint needs.
 * `SingleNet` is one net on one backend (its kernels may use several threads); `ReplicaGroup`
 * (replicas.ts) splits each batch over replicas of the net, one per thread.
 */
import type { FloatArray } from '../backend/backend.js';
import type { Net } from '../net/net.js';
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

/** The name of the blob a net's softmax cross-entropy reads, and its class count. */
export function logitsOf(net: Net): { logits: string; classes: number } {
  const loss = net.layers.find((l) => l.spec.type === 'softmax_cross_entropy');
  if (!loss) throw new Error('the model has no softmax_cross_entropy layer to train');
  const logits = net.layerInputs(loss.name)[0]!;
  return { logits, classes: net.shapeOf(logits)[1]! };
}

/** Loads weights and momentum into one net and its optimizer. */
export function loadNet(net: Net, sgd: Sgd, params: Record<string, ArrayLike<number>>, velocities: ArrayLike<number>[], randomState: PhiloxState): void {
  net.loadParams(params);
  sgd.velocities.forEach((v, i) => v.write(velocities[i]!));
  net.setRandomState(randomState);
}

export class SingleNet implements Learner {
  readonly replicas = 1;
  private readonly logits: string;

  constructor(readonly net: Net, readonly sgd: Sgd) {
    this.logits = logitsOf(net).logits;
  }

  async step(x: Float32Array, y: Float32Array, lr: number): Promise<StepResult> {
    const [data, label] = this.net.inputNames;
    this.net.setInput(data!, x);
    this.net.setInput(label!, y);
    this.sgd.lr = lr;
    this.net.forward({ training: true });
    this.net.backward();
    this.sgd.step();
    const [loss] = await this.net.read('loss');
    return { loss: loss!, logits: await this.net.read(this.logits) };
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
