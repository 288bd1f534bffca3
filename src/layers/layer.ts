/**
 * The layer contract: a forward/backward pair over tensors a network planned in advance.
 *
 * A layer is built from its spec and the shapes of its inputs; the constructor validates both and
 * computes the output shapes, so a network's every shape is known before anything runs. The layer
 * declares its parameters and the workspace it keeps between forward and backward (an LRN's
 * denominators, a dropout mask); the network allocates them. `backward` overwrites the gradients of
 * the parameters and of every input it is given a tensor for.
 */
import type { Backend } from '../backend/backend.js';
import type { LayerSpec } from '../net/spec.js';
import type { Philox } from '../random.js';
import { formatShape, type Shape, type Tensor } from '../tensor.js';

/** A spec or shape problem, reported as `layer: what is wrong`. */
export class SpecError extends Error {
  override name = 'SpecError';
}

export interface Param {
  /** Stable name, `layer.weight` / `layer.bias`, matching PyTorch's state_dict where the layers match. */
  name: string;
  shape: Shape;
  /** Inputs that feed one output unit: what initialisers scale by. */
  fanIn: number;
  value: Tensor;
  grad: Tensor;
}

export interface ParamDecl {
  shape: Shape;
  fanIn: number;
}

export interface ForwardArgs {
  backend: Backend;
  x: Tensor[];
  y: Tensor[];
  params: Record<string, Param>;
  workspace: Record<string, Tensor>;
  training: boolean;
  /** Source of per-step seeds (dropout). */
  rng: Philox;
  /** The position of this batch's first example in the step's whole batch: 0 but on the ranks of
   * a data-parallel run, whose slices then draw the whole batch's dropout masks. */
  firstExample: number;
}

export interface BackwardArgs extends ForwardArgs {
  dy: Tensor[];
  /** One entry per input; null where no gradient is wanted. */
  dx: (Tensor | null)[];
}

export abstract class Layer<S extends LayerSpec = LayerSpec> {
  abstract readonly outputShapes: Shape[];

  constructor(
    readonly spec: S,
    readonly inputShapes: Shape[],
  ) {}

  get name(): string {
    return this.spec.name;
  }

  paramDecls(): Record<string, ParamDecl> {
    return {};
  }

  workspaceShapes(): Record<string, Shape> {
    return {};
  }

  /** Multiply-adds of one forward pass over the whole batch. */
  macs(): number {
    return 0;
  }

  /** Whether input `index` takes a gradient (a loss's labels do not). */
  differentiable(_index: number): boolean {
    return true;
  }

  abstract forward(args: ForwardArgs): void;
  abstract backward(args: BackwardArgs): void;

  protected fail(message: string): never {
    throw new SpecError(`${this.name}: ${message}`);
  }

  protected expectInputs(count: number): void {
    if (this.inputShapes.length !== count) this.fail(`takes ${count} input${count === 1 ? '' : 's'}, got ${this.inputShapes.length}`);
  }

  protected expectRank(index: number, rank: number, layout: string): Shape {
    const shape = this.inputShapes[index]!;
    if (shape.length !== rank) this.fail(`expects a ${rank}-d input ${layout}, got ${formatShape(shape)}`);
    return shape;
  }

  protected integer(field: string, value: unknown, min: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      this.fail(`${field} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  protected number(field: string, value: unknown): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(`${field} must be a finite number, got ${JSON.stringify(value)}`);
    return value;
  }

  protected pair(field: string, value: unknown, min: number): [number, number] {
    const [h, w] = Array.isArray(value) ? value : [value, value];
    if (Array.isArray(value) && value.length !== 2) this.fail(`${field} must be a number or [height, width], got ${JSON.stringify(value)}`);
    return [this.integer(field, h, min), this.integer(field, w, min)];
  }

  /** [top, left, bottom, right] */
  protected padding(value: unknown): [number, number, number, number] {
    if (Array.isArray(value) && value.length === 4) return value.map((v) => this.integer('pad', v, 0)) as [number, number, number, number];
    if (Array.isArray(value) && value.length !== 2)
      this.fail(`pad must be a number, [height, width] or [top, left, bottom, right], got ${JSON.stringify(value)}`);
    const [h, w] = this.pair('pad', value, 0);
    return [h, w, h, w];
  }

  /** Resolves a possibly negative axis against a rank. */
  protected axis(value: number | undefined, fallback: number, rank: number): number {
    const axis = value ?? fallback;
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank) this.fail(`axis ${axis} is out of range for a ${rank}-d input`);
    return axis < 0 ? axis + rank : axis;
  }

  /** Rejects fields the layer type does not know: a typo should not silently change the net. */
  protected allowFields(...fields: string[]): void {
    const known = new Set(['name', 'type', 'inputs', 'outputs', ...fields]);
    for (const key of Object.keys(this.spec)) {
      if (!known.has(key)) this.fail(`unknown field '${key}' for a ${this.spec.type} layer (known: ${[...known].join(', ')})`);
    }
  }
}
