import type { ActivationFn } from '../backend/kernels.js';
import type { ActivationSpec, DropoutSpec } from '../net/spec.js';
import type { Shape } from '../tensor.js';
import { type BackwardArgs, type ForwardArgs, Layer } from './layer.js';

/** ReLU, tanh or sigmoid; the gradient is computed from the output. */
export class Activation extends Layer<ActivationSpec> {
  readonly outputShapes: Shape[];
  readonly fn: ActivationFn;

  constructor(spec: ActivationSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields();
    this.expectInputs(1);
    this.fn = spec.type;
    this.outputShapes = [inputShapes[0]!];
  }

  forward({ backend, x, y }: ForwardArgs): void {
    backend.run('activation_forward', { fn: this.fn, length: x[0]!.size }, { x: x[0]!.buffer, y: y[0]!.buffer });
  }

  backward({ backend, y, dy, dx }: BackwardArgs): void {
    if (dx[0])
      backend.run('activation_backward', { fn: this.fn, length: y[0]!.size }, { y: y[0]!.buffer, dy: dy[0]!.buffer, dx: dx[0].buffer });
  }
}

/**
 * Inverted dropout: in training each unit is zeroed with probability p and the survivors scaled by
 * 1/(1−p), so evaluation is the identity (equivalent to the paper's "multiply outputs by 0.5 at test
 * time"). Each training forward draws a fresh seed from the network's generator.
 */
export class Dropout extends Layer<DropoutSpec> {
  readonly outputShapes: Shape[];
  readonly p: number;

  constructor(spec: DropoutSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('p');
    this.expectInputs(1);
    this.p = this.number('p', spec.p);
    if (this.p < 0 || this.p >= 1) this.fail(`p must be in [0, 1), got ${this.p}`);
    this.outputShapes = [inputShapes[0]!];
  }

  override workspaceShapes(): Record<string, Shape> {
    return { mask: this.inputShapes[0]! };
  }

  forward({ backend, x, y, workspace, training, rng, firstExample }: ForwardArgs): void {
    const length = x[0]!.size;
    if (!training) {
      backend.run('copy', { length }, { x: x[0]!.buffer, y: y[0]!.buffer });
      return;
    }
    const seed = rng.nextUint32();
    const offset = firstExample * (length / x[0]!.shape[0]!);
    backend.run(
      'dropout_forward',
      { length, p: this.p, seed, stream: 0, offset },
      { x: x[0]!.buffer, y: y[0]!.buffer, mask: workspace.mask!.buffer },
    );
  }

  backward({ backend, dy, dx, workspace, training }: BackwardArgs): void {
    if (!dx[0]) return;
    const length = dy[0]!.size;
    if (training) backend.run('multiply', { length }, { a: dy[0]!.buffer, b: workspace.mask!.buffer, y: dx[0].buffer });
    else backend.run('copy', { length }, { x: dy[0]!.buffer, y: dx[0].buffer });
  }
}
