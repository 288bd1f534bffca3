import type { Conv2dGeometry } from '../backend/kernels.js';
import type { Conv2dSpec } from '../net/spec.js';
import type { Shape } from '../tensor.js';
import { type BackwardArgs, type ForwardArgs, Layer, type ParamDecl } from './layer.js';

/** Output length of a sliding window; with `ceil`, a last partial window counts if it starts
 * inside the input or the leading padding (PyTorch's and Caffe's rule). */
export function windowCount(
  input: number,
  kernel: number,
  stride: number,
  padBefore: number,
  padAfter: number,
  dilation: number,
  ceil: boolean,
): number {
  const span = input + padBefore + padAfter - dilation * (kernel - 1) - 1;
  if (span < 0) return 0;
  let count = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceil && (count - 1) * stride >= input + padBefore) count--;
  return count;
}

export class Conv2d extends Layer<Conv2dSpec> {
  readonly outputShapes: Shape[];
  readonly geometry: Conv2dGeometry;
  readonly hasBias: boolean;
  /** [top, left, bottom, right] */
  readonly pads: [number, number, number, number];

  constructor(spec: Conv2dSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('outChannels', 'kernel', 'stride', 'pad', 'dilation', 'groups', 'bias');
    this.expectInputs(1);
    const [batch, inChannels, inHeight, inWidth] = this.expectRank(0, 4, '[N, C, H, W]') as [number, number, number, number];
    const outChannels = this.integer('outChannels', spec.outChannels, 1);
    const [kernelH, kernelW] = this.pair('kernel', spec.kernel, 1);
    const [strideH, strideW] = this.pair('stride', spec.stride ?? 1, 1);
    const [dilationH, dilationW] = this.pair('dilation', spec.dilation ?? 1, 1);
    this.pads = this.padding(spec.pad ?? 0);
    const [padTop, padLeft, padBottom, padRight] = this.pads;
    const groups = this.integer('groups', spec.groups ?? 1, 1);
    if (inChannels % groups !== 0) this.fail(`${inChannels} input channels are not divisible by groups=${groups}`);
    if (outChannels % groups !== 0) this.fail(`${outChannels} output channels are not divisible by groups=${groups}`);
    const outHeight = windowCount(inHeight, kernelH, strideH, padTop, padBottom, dilationH, false);
    const outWidth = windowCount(inWidth, kernelW, strideW, padLeft, padRight, dilationW, false);
    if (outHeight < 1 || outWidth < 1) {
      this.fail(
        `a ${kernelH}×${kernelW} kernel (dilation ${dilationH}×${dilationW}) does not fit ` +
          `the padded ${inHeight + padTop + padBottom}×${inWidth + padLeft + padRight} input`,
      );
    }
    this.hasBias = spec.bias ?? true;
    this.geometry = {
      batch,
      inChannels,
      inHeight,
      inWidth,
      outChannels,
      outHeight,
      outWidth,
      kernelH,
      kernelW,
      strideH,
      strideW,
      padTop,
      padLeft,
      dilationH,
      dilationW,
      groups,
    };
    this.outputShapes = [[batch, outChannels, outHeight, outWidth]];
  }

  override paramDecls(): Record<string, ParamDecl> {
    const g = this.geometry;
    const fanIn = (g.inChannels / g.groups) * g.kernelH * g.kernelW;
    const weight = { shape: [g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW], fanIn };
    return this.hasBias ? { weight, bias: { shape: [g.outChannels], fanIn } } : { weight };
  }

  override macs(): number {
    const g = this.geometry;
    return g.batch * g.outChannels * g.outHeight * g.outWidth * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  }

  forward({ backend, x, y, params }: ForwardArgs): void {
    backend.run('conv2d_forward', this.geometry, {
      x: x[0]!.buffer,
      weight: params.weight!.value.buffer,
      bias: params.bias?.value.buffer,
      y: y[0]!.buffer,
    });
  }

  backward({ backend, x, dy, dx, params }: BackwardArgs): void {
    if (dx[0])
      backend.run('conv2d_backward_data', this.geometry, { dy: dy[0]!.buffer, weight: params.weight!.value.buffer, dx: dx[0].buffer });
    backend.run('conv2d_backward_filter', this.geometry, {
      x: x[0]!.buffer,
      dy: dy[0]!.buffer,
      dweight: params.weight!.grad.buffer,
      dbias: params.bias?.grad.buffer,
    });
  }
}
