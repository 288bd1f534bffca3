/**
 * The wasm backend's extension point: what another backend built on its memory and threads (the
 * native one: OpenBLAS and oneDNN on the same memory) may use of it, and the hooks it may fill.
 * The wasm backend knows only these interfaces; it imports nothing of what extends it.
 */
import type { Conv2dGeometry, KernelName, KernelTable } from '../kernels.js';
import type { Task } from './threads.js';

/** Up to this batch a linear layer is a matrix-vector product, bound by reading its weights: the
 * wasm kernel reads them row by row on every thread instead of packing them for a GEMM, and beats a
 * BLAS call there (paper net, batch 1, 2 threads: 11.3–12.4 images/s with fc6–fc8 in BLAS, 14.5–16.1
 * in wasm). */
export const ROW_BY_ROW_BATCH = 4;

/** A buffer of the wasm backend as an extension sees it: where its floats are, and a stamp that
 * changes whenever they may have. An extension may keep its own fields on it. */
export interface HostBuffer {
  readonly length: number;
  offset: number;
  stamp: number;
}

/** What an extension may use of the backend. */
export interface KernelHost {
  /** Runs tasks on the thread pool (every thread's GEMM scratch ready). */
  run(tasks: Task[]): void;
  /** Writes the convolution geometry block and returns its byte offset. */
  convGeometry(g: Conv2dGeometry): number;
  /** A persistent workspace of at least `floats`, kept between calls; its byte offset. */
  workspace(floats: number): number;
  /** A view of the memory from a byte offset on. */
  at(offset: number): Float32Array;
  /** [start, end) ranges covering [0, total) in at most one piece per thread (`align`ed boundaries). */
  perThread(total: number, align?: number): [number, number][];
  /** A buffer's floats, viewed in the memory. */
  view(b: HostBuffer): Float32Array;
}

type Buffers<K extends KernelName> = { [R in keyof KernelTable[K]['buffers']]-?: HostBuffer };
/** Kernels over the backend's buffers, by name. */
export type HostKernels = { [K in KernelName]?: (p: KernelTable[K]['params'], b: Buffers<K>) => void };

export interface WasmExtension {
  /** The backend's name with it ('native'). */
  readonly name: string;
  /** Told the thread count before the backend starts. */
  setThreads(threads: number): void;
  /** The kernels it takes over, given the backend's own (to fall back on). */
  kernels(host: KernelHost, wasm: HostKernels): HostKernels;
  /** Before a kernel runs, with its buffers by role. */
  prepare?<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], buffers: Record<string, HostBuffer>): void;
  /** Before the host writes `length` floats at `offset` into a buffer. */
  written?(b: HostBuffer, offset: number, length: number): void;
  /** A buffer's contents as NCHW floats, where the extension holds them in another form; else undefined. */
  read?(b: HostBuffer): Float32Array | undefined;
}
