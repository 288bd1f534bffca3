/**
 * The paper's update rule (section 5), run as one backend kernel per parameter so the weights
 * never leave the backend: v ← momentum·v − weightDecay·ε·w − ε·∂L/∂w;  w ← w + v.
 */
import type { Net } from '../net/net.js';
import { Tensor } from '../tensor.js';

export interface SgdOptions {
  /** ε. Paper: 0.01. */
  lr: number;
  /** Paper: 0.9. */
  momentum?: number;
  /** Paper: 0.0005. */
  weightDecay?: number;
  /** Parameters left as they are (by name): frozen layers when fine-tuning. */
  frozen?: ReadonlySet<string>;
}

export class Sgd {
  readonly momentum: number;
  readonly weightDecay: number;
  lr: number;
  /** One velocity per parameter, in `net.params` order, allocated once. */
  readonly velocities: Tensor[];
  readonly frozen: ReadonlySet<string>;

  constructor(
    readonly net: Net,
    options: SgdOptions,
  ) {
    if (net.inference) throw new Error('the net was built for inference (no gradients) and cannot be trained');
    this.lr = options.lr;
    this.momentum = options.momentum ?? 0.9;
    this.weightDecay = options.weightDecay ?? 0.0005;
    this.frozen = options.frozen ?? new Set();
    this.velocities = net.params.map((p) => Tensor.zeros(net.backend, p.shape));
    for (const v of this.velocities) net.backend.run('fill', { length: v.size, value: 0 }, { y: v.buffer });
  }

  /** The parameters it updates. */
  get trained(): Net['params'] {
    return this.net.params.filter((p) => !this.frozen.has(p.name));
  }

  /** Applies the gradients of the last backward pass. */
  step(): void {
    this.net.params.forEach((p, i) => {
      if (this.frozen.has(p.name)) return;
      this.net.backend.run(
        'sgd_update',
        { length: p.value.size, lr: this.lr, momentum: this.momentum, weightDecay: this.weightDecay },
        { weight: p.value.buffer, grad: p.grad.buffer, velocity: this.velocities[i]!.buffer },
      );
    });
  }

  dispose(): void {
    for (const v of this.velocities) v.free();
  }
}
