/**
 * Activations kept in oneDNN's blocked layout between layers (the native backend with oneDNN). A
 * convolution leaves its output in the layout the next convolution reads (nChw8c with AVX2) where it
 * takes the bytes of NCHW; ReLU and copies keep it, max-pooling reads and writes it on oneDNN; every
 * other kernel, and the host, sees an NCHW copy made on demand (kept while the tensor is unchanged,
 * so ReLU's backward reuses the one its max-pool's backward made). It saves the reorder in and out of
 * each convolution (ONNX Runtime keeps its tensors blocked the same way) and runs max-pooling on
 * oneDNN's blocked kernel.
 */
import { KERNEL_WRITES, type KernelName, type KernelTable } from '../kernels.js';
import type { Dnnl, Layout, Placed } from './dnnl.js';

/** A buffer of the wasm backend, as this module sees it. */
export interface Tensor extends Placed {
  readonly length: number;
}

/** What it needs of the wasm backend. */
export interface LayoutHost {
  /** A view of the memory from a byte offset on. */
  at(offset: number): Float32Array;
  allocate(bytes: number): number;
  release(offset: number, bytes: number): void;
}

type Reads<K extends KernelName> = (dnnl: Dnnl, params: KernelTable[K]['params'], layout: Layout, b: Record<string, Tensor>) => boolean;

/** The kernels that read their input `x` in a blocked layout as it is, where they do. */
const READS_BLOCKED: { [K in KernelName]?: Reads<K> } = {
  conv2d_forward: (dnnl, g, layout, b) => dnnl.convolutionReads('forward', g, b.bias !== undefined, layout),
  conv2d_backward_filter: (dnnl, g, layout, b) => dnnl.convolutionReads('backward_weights', g, b.dbias !== undefined, layout),
  maxpool2d_forward: (dnnl, g, layout) => dnnl.maxPoolReads(g, layout),
  activation_forward: (_, p, __, b) => p.length === b.x!.length && b.y!.length === b.x!.length,
  copy: (_, p, __, b) => p.length === b.x!.length && b.y!.length === b.x!.length,
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

/** Where an NCHW copy of a blocked tensor lives (wasm memory, grown as needed). */
interface Copy {
  offset: number;
  bytes: number;
  of?: Tensor;
  stamp: number;
  used: number;
}

/** NCHW copies kept: a kernel reads at most two blocked tensors it cannot take as they are. */
const COPIES = 2;

export class Layouts {
  private readonly copies: Copy[] = Array.from({ length: COPIES }, () => ({ offset: 0, bytes: 0, stamp: -1, used: 0 }));
  private calls = 0;

  constructor(
    private readonly dnnl: Dnnl,
    private readonly host: LayoutHost,
  ) {}

  /** The buffers a kernel is to be given: blocked ones it cannot read replaced by NCHW copies; the
   * layouts of what it writes settled (kept, or NCHW until the kernel says otherwise). */
  prepare<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], owned: Record<string, Tensor>): Record<string, Tensor> {
    this.calls++;
    const written = KERNEL_WRITES[kernel] as readonly string[];
    const partial = 'length' in params && typeof params.length === 'number';
    for (const role of written) {
      const b = owned[role];
      if (b?.layout && (UPDATES[kernel]?.includes(role) || (partial && params.length !== b.length))) this.makePlain(b);
    }
    const x = owned.x;
    const reads = READS_BLOCKED[kernel] as Reads<K> | undefined;
    const kept = x?.layout && reads?.(this.dnnl, params, x.layout, owned) ? x.layout : undefined;
    const seen = { ...owned };
    const taken = new Set<Copy>();
    for (const [role, b] of Object.entries(owned)) {
      if (!b.layout || written.includes(role) || (role === 'x' && kept)) continue;
      seen[role] = this.plainCopy(b, taken);
    }
    const read = Object.entries(seen)
      .filter(([role]) => !written.includes(role))
      .map(([, b]) => b);
    for (const role of written) if (owned[role] && !read.includes(owned[role])) owned[role].layout = undefined;
    if (kept && KEEPS_LAYOUT.has(kernel)) owned.y!.layout = kept;
    return seen;
  }

  /** The tensor as NCHW, for the host. */
  read(b: Tensor): Float32Array {
    const plain = new Float32Array(b.length);
    b.layout!.toPlain(this.view(b.offset, b.length), plain);
    return plain;
  }

  /** Before the host writes `length` values at `offset`: a blocked tensor becomes NCHW (converted
   * first when the write leaves some of it as it was). */
  written(b: Tensor, offset: number, length: number): void {
    if (b.layout && (offset > 0 || length < b.length)) this.makePlain(b);
    b.layout = undefined;
  }

  private makePlain(b: Tensor): void {
    const copy = this.plainCopy(b, new Set());
    this.view(b.offset, b.length).set(this.view(copy.offset, b.length));
    b.layout = undefined;
  }

  /** An NCHW copy of a blocked tensor: one already made while the tensor is unchanged, or a new one
   * in the least recently used copy not `taken` by this kernel. */
  private plainCopy(b: Tensor, taken: Set<Copy>): Tensor {
    let copy = this.copies.find((c) => c.of === b && c.stamp === b.stamp);
    if (!copy) {
      copy = this.copies.filter((c) => !taken.has(c)).reduce((a, c) => (c.used < a.used ? c : a));
      const bytes = 4 * b.length;
      if (copy.bytes < bytes) {
        if (copy.bytes > 0) this.host.release(copy.offset, copy.bytes);
        copy.offset = this.host.allocate(bytes);
        copy.bytes = bytes;
      }
      b.layout!.toPlain(this.view(b.offset, b.length), this.view(copy.offset, b.length));
      copy.of = b;
      copy.stamp = b.stamp;
    }
    copy.used = this.calls;
    taken.add(copy);
    return { offset: copy.offset, stamp: b.stamp, length: b.length };
  }

  private view(offset: number, length: number): Float32Array {
    return this.host.at(offset).subarray(0, length);
  }
}
