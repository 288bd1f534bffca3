/**
 * The backend interface: the one seam between the network and the hardware.
 *
 * A backend owns memory (`allocate`/`free`), moves data across the host boundary (`write`/`read`)
 * and runs named kernels over its own buffers (`run`). `run` only enqueues: a synchronous CPU
 * backend executes at once, an asynchronous GPU backend records into a command buffer and
 * executes on `flush` or before a `read`. Data stays on the backend between layers; only `read`
 * brings it back, and it is asynchronous for that reason.
 */
import type { DeviceBuffer, FloatArray, KernelName, KernelTable } from './kernels.js';

export type { DeviceBuffer, FloatArray } from './kernels.js';

export interface Backend {
  readonly name: string;
  /** Element type of the buffers; `float64` exists only for finite-difference gradient checks. */
  readonly precision: 'float32' | 'float64';
  allocate(length: number): DeviceBuffer;
  free(buffer: DeviceBuffer): void;
  write(buffer: DeviceBuffer, data: ArrayLike<number>, offset?: number): void;
  read(buffer: DeviceBuffer): Promise<FloatArray>;
  /** Present on backends whose memory the host can read directly (the CPU ones). */
  readSync?(buffer: DeviceBuffer): FloatArray;
  /** The buffer's memory itself, in its plain layout, for the host to read and change in place (the
   * CPU backends; counted as a write). Valid until the next allocation. A data-parallel run sums
   * gradients across processes there, with no copy. */
  hostView?(buffer: DeviceBuffer): FloatArray;
  run<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], buffers: KernelTable[K]['buffers']): void;
  /** Waits until every enqueued kernel has finished. */
  flush(): Promise<void>;
  /** Releases what the backend holds outside its buffers (worker threads, devices); it is unusable afterwards. */
  dispose(): Promise<void>;
}
