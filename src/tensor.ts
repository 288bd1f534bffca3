/** A shaped view of one backend buffer. Shapes are NCHW and include the batch. */
import type { Backend, DeviceBuffer, FloatArray } from './backend/backend.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly size: number;

  constructor(
    readonly backend: Backend,
    readonly shape: Shape,
    readonly buffer: DeviceBuffer,
  ) {
    this.size = sizeOf(shape);
    if (buffer.length !== this.size)
      throw new Error(`tensor of shape ${formatShape(shape)} needs ${this.size} values, buffer holds ${buffer.length}`);
  }

  static zeros(backend: Backend, shape: Shape): Tensor {
    return new Tensor(backend, shape, backend.allocate(sizeOf(shape)));
  }

  write(data: ArrayLike<number>): void {
    if (data.length !== this.size) throw new Error(`expected ${this.size} values for shape ${formatShape(this.shape)}, got ${data.length}`);
    this.backend.write(this.buffer, data);
  }

  read(): Promise<FloatArray> {
    return this.backend.read(this.buffer);
  }

  /** Synchronous read; only CPU backends offer it. */
  readSync(): FloatArray {
    if (!this.backend.readSync) throw new Error(`backend '${this.backend.name}' reads asynchronously: use await tensor.read()`);
    return this.backend.readSync(this.buffer);
  }

  free(): void {
    this.backend.free(this.buffer);
  }
}
