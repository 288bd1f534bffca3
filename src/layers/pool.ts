import type { AdaptivePoolGeometry, Pool2dGeometry } from '../backend/kernels.js';
import type { AdaptiveAvgPool2dSpec, MaxPool2dSpec } from '../net/spec.js';
import { type Shape, sizeOf } from '../tensor.js';
import { windowCount } from './conv.js';
import { type BackwardArgs, type ForwardArgs, Layer } from './layer.js';

export class MaxPool2d extends Layer<MaxPool2dSpec> {
  readonly outputShapes: Shape[];
  readonly geometry: Pool2dGeometry;
  /** [top, left, bottom, right] */
  readonly pads: [number, number, number, number];

  constructor(spec: MaxPool2dSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('kernel', 'stride', 'pad', 'dilation', 'ceil');
    this.expectInputs(1);
    const [batch, channels, inHeight, inWidth] = this.expectRank(0, 4, '[N, C, H, W]') as [number, number, number, number];
    const [kernelH, kernelW] = this.pair('kernel', spec.kernel, 1);
    const [strideH, strideW] = this.pair('stride', spec.stride ?? spec.kernel, 1);
    const [dilationH, dilationW] = this.pair('dilation', spec.dilation ?? 1, 1);
    this.pads = this.padding(spec.pad ?? 0);
    const [padTop, padLeft, padBottom, padRight] = this.pads;
    const spanH = dilationH * (kernelH - 1) + 1,
      spanW = dilationW * (kernelW - 1) + 1;
    if (Math.max(padTop, padBottom) >= spanH || Math.max(padLeft, padRight) >= spanW) {
      this.fail(
        `padding ${JSON.stringify(spec.pad)} must be smaller than the ${spanH}×${spanW} window, or a window could hold only padding`,
      );
    }
    const ceil = spec.ceil ?? false;
    const outHeight = windowCount(inHeight, kernelH, strideH, padTop, padBottom, dilationH, ceil);
    const outWidth = windowCount(inWidth, kernelW, strideW, padLeft, padRight, dilationW, ceil);
    if (outHeight < 1 || outWidth < 1)
      this.fail(
        `a ${spanH}×${spanW} window does not fit the padded ${inHeight + padTop + padBottom}×${inWidth + padLeft + padRight} input`,
      );
    this.geometry = {
      batch,
      channels,
      inHeight,
      inWidth,
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
    };
    this.outputShapes = [[batch, channels, outHeight, outWidth]];
  }

  forward({ backend, x, y }: ForwardArgs): void {
    backend.run('maxpool2d_forward', this.geometry, { x: x[0]!.buffer, y: y[0]!.buffer });
  }

  backward({ backend, x, dy, dx }: BackwardArgs): void {
    if (dx[0]) backend.run('maxpool2d_backward', this.geometry, { x: x[0]!.buffer, dy: dy[0]!.buffer, dx: dx[0].buffer });
  }
}

/** Average pooling to a fixed output size (torchvision's AlexNet pools to 6×6 before the classifier). */
export class AdaptiveAvgPool2d extends Layer<AdaptiveAvgPool2dSpec> {
  readonly outputShapes: Shape[];
  readonly geometry: AdaptivePoolGeometry;

  constructor(spec: AdaptiveAvgPool2dSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('output');
    this.expectInputs(1);
    const [batch, channels, inHeight, inWidth] = this.expectRank(0, 4, '[N, C, H, W]') as [number, number, number, number];
    const [outHeight, outWidth] = this.pair('output', spec.output, 1);
    this.geometry = { batch, channels, inHeight, inWidth, outHeight, outWidth };
    this.outputShapes = [[batch, channels, outHeight, outWidth]];
  }

  /** Pooling to the input's own size (torchvision's 6×6 on a 224 input) is the identity: a copy,
   * 0.3 ms where the general kernel, then TypeScript over the wasm memory, took 18.9 (torchvision
   * net, batch 64, native backend). */
  private get identity(): boolean {
    const g = this.geometry;
    return g.inHeight === g.outHeight && g.inWidth === g.outWidth;
  }

  forward({ backend, x, y }: ForwardArgs): void {
    if (this.identity) backend.run('copy', { length: sizeOf(this.outputShapes[0]!) }, { x: x[0]!.buffer, y: y[0]!.buffer });
    else backend.run('adaptive_avgpool2d_forward', this.geometry, { x: x[0]!.buffer, y: y[0]!.buffer });
  }

  backward({ backend, dy, dx }: BackwardArgs): void {
    if (!dx[0]) return;
    if (this.identity) backend.run('copy', { length: sizeOf(this.outputShapes[0]!) }, { x: dy[0]!.buffer, y: dx[0].buffer });
    else backend.run('adaptive_avgpool2d_backward', this.geometry, { dy: dy[0]!.buffer, dx: dx[0].buffer });
  }
}
