import type { SoftmaxParams } from '../backend/kernels.js';
import type { SoftmaxCrossEntropySpec, SoftmaxSpec } from '../net/spec.js';
import { formatShape, type Shape, sizeOf } from '../tensor.js';
import { type BackwardArgs, type ForwardArgs, Layer } from './layer.js';

/** Softmax or log-softmax along one axis (or, with over: 'trailing', over all axes from it on). */
export class Softmax extends Layer<SoftmaxSpec> {
  readonly outputShapes: Shape[];
  readonly params: SoftmaxParams;

  constructor(spec: SoftmaxSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('axis', 'over');
    this.expectInputs(1);
    const shape = inputShapes[0]!;
    const axis = this.axis(spec.axis, 1, shape.length);
    const over = spec.over ?? 'axis';
    if (over !== 'axis' && over !== 'trailing') this.fail(`over must be 'axis' or 'trailing', got ${JSON.stringify(over)}`);
    const end = over === 'trailing' ? shape.length : axis + 1;
    this.params = {
      outer: sizeOf(shape.slice(0, axis)),
      axis: sizeOf(shape.slice(axis, end)),
      inner: sizeOf(shape.slice(end)),
      log: spec.type === 'log_softmax',
    };
    this.outputShapes = [shape];
  }

  forward({ backend, x, y }: ForwardArgs): void {
    backend.run('softmax_forward', this.params, { x: x[0]!.buffer, y: y[0]!.buffer });
  }

  backward({ backend, y, dy, dx }: BackwardArgs): void {
    if (dx[0]) backend.run('softmax_backward', this.params, { y: y[0]!.buffer, dy: dy[0]!.buffer, dx: dx[0].buffer });
  }
}

/** The paper's multinomial logistic regression objective: mean over the batch of −log p(label). */
export class SoftmaxCrossEntropy extends Layer<SoftmaxCrossEntropySpec> {
  readonly outputShapes: Shape[] = [[]];
  readonly params: { batch: number; classes: number };

  constructor(spec: SoftmaxCrossEntropySpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields();
    this.expectInputs(2);
    const [logits, labels] = inputShapes as [Shape, Shape];
    if (logits.length !== 2) this.fail(`expects logits [N, classes], got ${formatShape(logits)}`);
    if (labels.length !== 1 || labels[0] !== logits[0])
      this.fail(`expects labels [${logits[0]}] (one class index per example), got ${formatShape(labels)}`);
    this.params = { batch: logits[0]!, classes: logits[1]! };
  }

  override differentiable(index: number): boolean {
    return index === 0;
  }

  override workspaceShapes(): Record<string, Shape> {
    return { probs: this.inputShapes[0]! };
  }

  forward({ backend, x, y, workspace }: ForwardArgs): void {
    backend.run('softmax_cross_entropy_forward', this.params, {
      logits: x[0]!.buffer,
      labels: x[1]!.buffer,
      probs: workspace.probs!.buffer,
      loss: y[0]!.buffer,
    });
  }

  backward({ backend, x, dy, dx, workspace }: BackwardArgs): void {
    if (dx[0])
      backend.run('softmax_cross_entropy_backward', this.params, {
        probs: workspace.probs!.buffer,
        labels: x[1]!.buffer,
        dloss: dy[0]!.buffer,
        dlogits: dx[0].buffer,
      });
  }
}
