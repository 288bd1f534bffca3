/**
 * The reference backend: plain TypeScript over typed arrays, written to be read. It is the oracle
 * every other backend is tested against. With `precision: 'float64'` it computes in double
 * precision, which the finite-difference gradient checks need.
 */
import type { Backend, DeviceBuffer, FloatArray } from '../backend.js';
import type { KernelName, KernelTable } from '../kernels.js';
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward } from './conv.js';
import { gemm, linearBackwardData, linearBackwardParams, linearForward } from './dense.js';
import {
  accumulate,
  activationBackward,
  activationForward,
  copy,
  copySlab,
  dropoutForward,
  fill,
  multiply,
  randomFill,
  sgdUpdate,
} from './elementwise.js';
import { lrnBackward, lrnForward } from './lrn.js';
import { adaptiveAvgpool2dBackward, adaptiveAvgpool2dForward, maxpool2dBackward, maxpool2dForward } from './pool.js';
import { softmaxBackward, softmaxCrossEntropyBackward, softmaxCrossEntropyForward, softmaxForward } from './softmax.js';

class HostBuffer implements DeviceBuffer {
  constructor(
    readonly backend: ReferenceBackend,
    public data: FloatArray | null,
  ) {}
  get length(): number {
    return this.data?.length ?? 0;
  }
}

/** A kernel over host arrays: the buffers of `KernelTable[K]` with arrays in place of handles.
 * The wasm backend reuses these over views of its memory for the kernels it does not compile. */
export type HostKernel<K extends KernelName> = (
  params: KernelTable[K]['params'],
  buffers: { [B in keyof KernelTable[K]['buffers']]: FloatArray },
) => void;

export const referenceKernels: { [K in KernelName]: HostKernel<K> } = {
  conv2d_forward: conv2dForward,
  conv2d_backward_data: conv2dBackwardData,
  conv2d_backward_filter: conv2dBackwardFilter,
  maxpool2d_forward: maxpool2dForward,
  maxpool2d_backward: maxpool2dBackward,
  adaptive_avgpool2d_forward: adaptiveAvgpool2dForward,
  adaptive_avgpool2d_backward: adaptiveAvgpool2dBackward,
  lrn_forward: lrnForward,
  lrn_backward: lrnBackward,
  activation_forward: activationForward,
  activation_backward: activationBackward,
  gemm,
  linear_forward: linearForward,
  linear_backward_data: linearBackwardData,
  linear_backward_params: linearBackwardParams,
  dropout_forward: dropoutForward,
  multiply,
  softmax_forward: softmaxForward,
  softmax_backward: softmaxBackward,
  softmax_cross_entropy_forward: softmaxCrossEntropyForward,
  softmax_cross_entropy_backward: softmaxCrossEntropyBackward,
  sgd_update: sgdUpdate,
  random_fill: randomFill,
  copy,
  copy_slab: copySlab,
  accumulate,
  fill,
};

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly precision: 'float32' | 'float64';

  constructor(options: { precision?: 'float32' | 'float64' } = {}) {
    this.precision = options.precision ?? 'float32';
  }

  allocate(length: number): DeviceBuffer {
    if (!Number.isInteger(length) || length < 0) throw new Error(`allocate: length must be a non-negative integer, got ${length}`);
    return new HostBuffer(this, this.precision === 'float64' ? new Float64Array(length) : new Float32Array(length));
  }

  free(buffer: DeviceBuffer): void {
    this.host(buffer); // checks ownership
    (buffer as HostBuffer).data = null;
  }

  write(buffer: DeviceBuffer, data: ArrayLike<number>, offset = 0): void {
    const target = this.host(buffer);
    if (offset + data.length > target.length) {
      throw new Error(`write: ${data.length} values at offset ${offset} do not fit a buffer of ${target.length}`);
    }
    target.set(data, offset);
  }

  readSync(buffer: DeviceBuffer): FloatArray {
    return this.host(buffer).slice();
  }

  hostView(buffer: DeviceBuffer): FloatArray {
    return this.host(buffer);
  }

  async read(buffer: DeviceBuffer): Promise<FloatArray> {
    return this.readSync(buffer);
  }

  run<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], buffers: KernelTable[K]['buffers']): void {
    const arrays: Record<string, FloatArray> = {};
    for (const [role, buffer] of Object.entries(buffers as Record<string, DeviceBuffer | undefined>)) {
      if (buffer) arrays[role] = this.host(buffer);
    }
    (referenceKernels[kernel] as HostKernel<K>)(params, arrays as never);
  }

  async flush(): Promise<void> {}

  async dispose(): Promise<void> {}

  private host(buffer: DeviceBuffer): FloatArray {
    if (!(buffer instanceof HostBuffer) || buffer.backend !== this) throw new Error('buffer belongs to another backend');
    if (!buffer.data) throw new Error('buffer was freed');
    return buffer.data;
  }
}
