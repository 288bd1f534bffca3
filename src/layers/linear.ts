import type { LinearParams } from '../backend/kernels.js';
import type { LinearSpec } from '../net/spec.js';
import { type Shape, sizeOf } from '../tensor.js';
import { type BackwardArgs, type ForwardArgs, Layer, type ParamDecl } from './layer.js';

/** Fully connected: y = x·Wᵀ + b with W [out, in] as PyTorch. An input [N, C, H, W] is read as
 * [N, C·H·W] (Caffe's InnerProduct does the same), so no flatten is needed before it. */
export class Linear extends Layer<LinearSpec> {
  readonly outputShapes: Shape[];
  readonly params: LinearParams;
  readonly hasBias: boolean;

  constructor(spec: LinearSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('outFeatures', 'bias');
    this.expectInputs(1);
    const shape = inputShapes[0]!;
    if (shape.length < 2) this.fail(`expects an input [N, features…], got ${shape.length}-d`);
    const outFeatures = this.integer('outFeatures', spec.outFeatures, 1);
    this.params = { batch: shape[0]!, inFeatures: sizeOf(shape.slice(1)), outFeatures };
    this.hasBias = spec.bias ?? true;
    this.outputShapes = [[shape[0]!, outFeatures]];
  }

  override paramDecls(): Record<string, ParamDecl> {
    const { inFeatures, outFeatures } = this.params;
    const weight = { shape: [outFeatures, inFeatures], fanIn: inFeatures };
    return this.hasBias ? { weight, bias: { shape: [outFeatures], fanIn: inFeatures } } : { weight };
  }

  override macs(): number {
    return this.params.batch * this.params.inFeatures * this.params.outFeatures;
  }

  forward({ backend, x, y, params }: ForwardArgs): void {
    backend.run('linear_forward', this.params, {
      x: x[0]!.buffer,
      weight: params.weight!.value.buffer,
      bias: params.bias?.value.buffer,
      y: y[0]!.buffer,
    });
  }

  backward({ backend, x, dy, dx, params }: BackwardArgs): void {
    if (dx[0])
      backend.run('linear_backward_data', this.params, { dy: dy[0]!.buffer, weight: params.weight!.value.buffer, dx: dx[0].buffer });
    backend.run('linear_backward_params', this.params, {
      x: x[0]!.buffer,
      dy: dy[0]!.buffer,
      dweight: params.weight!.grad.buffer,
      dbias: params.bias?.grad.buffer,
    });
  }
}
