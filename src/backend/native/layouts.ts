/**
 * Activations kept in oneDNN's blocked layout between layers (the native backend with oneDNN). A
 * convolution leaves its output in the layout the next convolution reads (nChw8c with AVX2) where it
 * takes the bytes of NCHW; ReLU and copies keep it, and max-pooling reads and writes it (a wasm
 * kernel: oneDNN's pooling drops NaN, where PyTorch's and ours propagate it);
 * before any other kernel reads it, it becomes NCHW in place (the host reads an NCHW copy). It saves
 * the reorder in and out of each convolution (ONNX Runtime keeps its tensors blocked the same way).
 */
import { KERNEL_WRITES, type KernelName, type KernelTable } from '../kernels.js';
import type { Dnnl, Layout, Placed } from './dnnl.js';

/** A buffer of the wasm backend, as this module sees it. */
export interface Tensor extends Placed {
  readonly length: number;
}

/** What it needs of the wasm backend: a buffer's floats, viewed in its memory. */
export type View = (b: Tensor) => Float32Array;

type Reads<K extends KernelName> = (dnnl: Dnnl, params: KernelTable[K]['params'], layout: Layout, b: Record<string, Tensor>) => boolean;

/** The kernels that read their input `x` in a blocked layout as it is, where they do. */
const READS_BLOCKED: { [K in KernelName]?: Reads<K> } = {
  conv2d_forward: (dnnl, g, layout, b) => dnnl.convolutionReads('forward', g, b.bias !== undefined, layout),
  conv2d_backward_filter: (dnnl, g, layout, b) => dnnl.convolutionReads('backward_weights', g, b.dbias !== undefined, layout),
  maxpool2d_forward: (_dnnl, _g, layout) => layout.block !== undefined,
  activation_forward: (_dnnl, _params, _layout, b) => b.y!.length === b.x!.length,
  copy: (_dnnl, _params, _layout, b) => b.y!.length === b.x!.length,
};

/** Elementwise kernels whose output keeps their input's layout. */
const KEEPS_LAYOUT = new Set<KernelName>(['activation_forward', 'copy']);

/** Written buffers whose earlier contents the kernel reads or keeps: made NCHW in place first. */
const UPDATES: { [K in KernelName]?: readonly string[] } = {
  accumulate: ['y'],
  sgd_update: ['weight', 'velocity'],
  gemm: ['c'],
  copy_slab: ['dst'],
};

export class Layouts {
  /** Where a tensor made NCHW in place passes through: outside the wasm memory, whose 4 GiB the
   * paper net's training at batch 128 nearly fills (NCHW copies kept inside took 283 MiB more). */
  private transit = new Float32Array(0);

  constructor(
    private readonly dnnl: Dnnl,
    private readonly view: View,
  ) {}

  /** Before a kernel runs: blocked tensors it cannot read become NCHW (in place), and what it writes
   * is NCHW unless it keeps the layout of its input. */
  prepare<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], owned: Record<string, Tensor>): void {
    let blocked = false;
    for (const role in owned) blocked ||= owned[role]!.layout !== undefined;
    if (!blocked) return;
    const written = KERNEL_WRITES[kernel] as readonly string[];
    const x = owned.x;
    const reads = READS_BLOCKED[kernel] as Reads<K> | undefined;
    const kept = x?.layout && reads?.(this.dnnl, params, x.layout, owned) ? x.layout : undefined;
    for (const [role, b] of Object.entries(owned)) {
      if (!b.layout || (role === 'x' && kept)) continue;
      if (!written.includes(role) || UPDATES[kernel]?.includes(role)) this.makePlain(b);
    }
    for (const role of written) {
      const b = owned[role];
      if (b && b !== x) b.layout = b.origin = undefined;
    }
    if (kept && KEEPS_LAYOUT.has(kernel)) Object.assign(owned.y!, { layout: kept, origin: x!.origin ?? x });
  }

  /** The tensor as NCHW, for the host. */
  read(b: Tensor): Float32Array {
    const plain = new Float32Array(b.length);
    b.layout!.toPlain(this.view(b), plain);
    return plain;
  }

  /** Before the host writes `length` values at `offset`: a blocked tensor becomes NCHW (converted
   * first when the write leaves some of it as it was). */
  written(b: Tensor, offset: number, length: number): void {
    if (b.layout && (offset > 0 || length < b.length)) this.makePlain(b);
    b.layout = b.origin = undefined;
  }

  private makePlain(b: Tensor): void {
    if (this.transit.length < b.length) this.transit = new Float32Array(b.length);
    const plain = this.transit.subarray(0, b.length);
    b.layout!.toPlain(this.view(b), plain);
    this.view(b).set(plain);
    (b.origin ?? b).readAsNchw = true;
    b.layout = b.origin = undefined;
  }
}
