import type { LrnParams } from '../backend/kernels.js';
import type { LrnSpec } from '../net/spec.js';
import { type Shape, sizeOf } from '../tensor.js';
import { type BackwardArgs, type ForwardArgs, Layer } from './layer.js';

/** Local response normalization across channels; see `LrnSpec.alphaConvention` for the α choice. */
export class LocalResponseNorm extends Layer<LrnSpec> {
  readonly outputShapes: Shape[];
  readonly params: LrnParams;

  constructor(spec: LrnSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('size', 'alpha', 'beta', 'k', 'alphaConvention');
    this.expectInputs(1);
    const shape = this.inputShapes[0]!;
    if (shape.length < 2) this.fail(`expects an input [N, C, ...], got a ${shape.length}-d one`);
    const size = this.integer('size', spec.size, 1);
    if (size % 2 === 0) this.fail(`size must be odd so the window centres on its channel (as Caffe requires), got ${size}`);
    const convention = spec.alphaConvention ?? 'paper';
    if (convention !== 'paper' && convention !== 'over-n')
      this.fail(`alphaConvention must be 'paper' or 'over-n', got ${JSON.stringify(convention)}`);
    const alpha = this.number('alpha', spec.alpha);
    this.params = {
      batch: shape[0]!,
      channels: shape[1]!,
      spatial: sizeOf(shape.slice(2)),
      size,
      alpha: convention === 'paper' ? alpha : alpha / size,
      beta: this.number('beta', spec.beta),
      k: this.number('k', spec.k),
    };
    this.outputShapes = [shape];
  }

  override workspaceShapes(): Record<string, Shape> {
    return { scale: this.inputShapes[0]! };
  }

  forward({ backend, x, y, workspace }: ForwardArgs): void {
    backend.run('lrn_forward', this.params, { x: x[0]!.buffer, y: y[0]!.buffer, scale: workspace.scale!.buffer });
  }

  backward({ backend, x, y, dy, dx, workspace }: BackwardArgs): void {
    if (!dx[0]) return;
    backend.run('lrn_backward', this.params, {
      x: x[0]!.buffer,
      y: y[0]!.buffer,
      scale: workspace.scale!.buffer,
      dy: dy[0]!.buffer,
      dx: dx[0].buffer,
    });
  }
}
