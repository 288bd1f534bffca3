/** Layers that move data without arithmetic: flatten, concat and split. */
import type { ConcatSpec, FlattenSpec, SplitSpec } from '../net/spec.js';
import { formatShape, type Shape, sizeOf } from '../tensor.js';
import { type BackwardArgs, type ForwardArgs, Layer } from './layer.js';

export class Flatten extends Layer<FlattenSpec> {
  readonly outputShapes: Shape[];

  constructor(spec: FlattenSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('axis');
    this.expectInputs(1);
    const shape = inputShapes[0]!;
    // axis may equal the rank (everything goes to the first dimension), as in ONNX.
    const axis = spec.axis === shape.length ? shape.length : this.axis(spec.axis, 1, shape.length);
    this.outputShapes = [[sizeOf(shape.slice(0, axis)), sizeOf(shape.slice(axis))]];
  }

  forward({ backend, x, y }: ForwardArgs): void {
    backend.run('copy', { length: x[0]!.size }, { x: x[0]!.buffer, y: y[0]!.buffer });
  }

  backward({ backend, dy, dx }: BackwardArgs): void {
    if (dx[0]) backend.run('copy', { length: dy[0]!.size }, { x: dy[0]!.buffer, y: dx[0].buffer });
  }
}

/** Views every tensor as [outer, parts along the axis, inner]; the parts are slabs copied whole. */
abstract class AxisSlabs<S extends ConcatSpec | SplitSpec> extends Layer<S> {
  protected outer = 1;
  protected inner = 1;
  protected total = 0;
  protected parts: number[] = [];

  protected layout(shape: Shape, axisValue: number | undefined): number {
    const axis = this.axis(axisValue, 1, shape.length);
    this.outer = sizeOf(shape.slice(0, axis));
    this.inner = sizeOf(shape.slice(axis + 1));
    return axis;
  }

  /** Copies between the whole tensor and its parts, in either direction. */
  protected copyParts(
    args: ForwardArgs,
    whole: ForwardArgs['x'][number],
    parts: (ForwardArgs['x'][number] | null)[],
    toWhole: boolean,
  ): void {
    let offset = 0;
    this.parts.forEach((count, i) => {
      const part = parts[i];
      if (part) {
        const params = { outer: this.outer, inner: this.inner, count };
        args.backend.run(
          'copy_slab',
          toWhole
            ? { ...params, srcAxis: count, srcOffset: 0, dstAxis: this.total, dstOffset: offset }
            : { ...params, srcAxis: this.total, srcOffset: offset, dstAxis: count, dstOffset: 0 },
          toWhole ? { src: part.buffer, dst: whole.buffer } : { src: whole.buffer, dst: part.buffer },
        );
      }
      offset += count;
    });
  }
}

export class Concat extends AxisSlabs<ConcatSpec> {
  readonly outputShapes: Shape[];

  constructor(spec: ConcatSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('axis');
    if (inputShapes.length < 1) this.fail('takes at least one input');
    const first = inputShapes[0]!;
    const axis = this.layout(first, spec.axis);
    for (const [i, shape] of inputShapes.entries()) {
      const same = shape.length === first.length && shape.every((d, j) => j === axis || d === first[j]);
      if (!same) this.fail(`input ${i} ${formatShape(shape)} does not match ${formatShape(first)} outside axis ${axis}`);
    }
    this.parts = inputShapes.map((s) => s[axis]!);
    this.total = this.parts.reduce((a, b) => a + b, 0);
    this.outputShapes = [first.map((d, j) => (j === axis ? this.total : d))];
  }

  forward(args: ForwardArgs): void {
    this.copyParts(args, args.y[0]!, args.x, true);
  }

  backward(args: BackwardArgs): void {
    this.copyParts(args, args.dy[0]!, args.dx, false);
  }
}

export class Split extends AxisSlabs<SplitSpec> {
  readonly outputShapes: Shape[];

  constructor(spec: SplitSpec, inputShapes: Shape[]) {
    super(spec, inputShapes);
    this.allowFields('axis', 'sizes');
    this.expectInputs(1);
    const shape = inputShapes[0]!;
    const axis = this.layout(shape, spec.axis);
    if (!Array.isArray(spec.sizes) || spec.sizes.length < 1) this.fail('sizes must be a non-empty list');
    this.parts = spec.sizes.map((s) => this.integer('sizes', s, 1));
    this.total = shape[axis]!;
    const sum = this.parts.reduce((a, b) => a + b, 0);
    if (sum !== this.total) this.fail(`sizes ${JSON.stringify(spec.sizes)} add up to ${sum}, but axis ${axis} has ${this.total}`);
    this.outputShapes = this.parts.map((count) => shape.map((d, j) => (j === axis ? count : d)));
  }

  forward(args: ForwardArgs): void {
    this.copyParts(args, args.x[0]!, args.y, false);
  }

  backward(args: BackwardArgs): void {
    if (args.dx[0]) this.copyParts(args, args.dx[0], args.dy, true);
  }
}
