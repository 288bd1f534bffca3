/**
 * The wasm backend: AssemblyScript kernels compiled to WebAssembly SIMD128 (with relaxed-SIMD FMA
 * where the engine has it), run by a pool of threads over one shared WebAssembly.Memory. Buffers
 * are regions of that memory; kernels it does not compile (the cheap, memory-bound ones) run the
 * reference backend's TypeScript over views of the same memory, so nothing is ever copied.
 */
import type { Backend, DeviceBuffer, FloatArray } from '../backend.js';
import type { ActivationFn, Conv2dGeometry, KernelName, KernelTable, Pool2dGeometry } from '../kernels.js';
import { type HostKernel, referenceKernels } from '../reference/backend.js';
import type { KernelExports } from './exports.js';
import { platform } from './platform.js';
import { type Task, ThreadPool } from './threads.js';

const PAGE = 65536;
/** Below this byte offset: the module's own static data. */
const HEAP_BASE = 1 << 20;
const ALIGN = 64;
const MAX_PAGES = 65536; // 4 GiB, all of wasm32
/** Work below this many multiply-adds (or elements, for memory-bound kernels) stays on one thread. */
const PARALLEL_MACS = 2e6;
const PARALLEL_ELEMENTS = 1 << 16;
const TASKS_PER_THREAD = 2;
/** Up to this batch, a linear layer reads its weights row by row instead of packing them for a GEMM. */
const SMALL_BATCH = 4;

class WasmBuffer implements DeviceBuffer {
  constructor(
    readonly backend: WasmBackend,
    public offset: number,
    readonly length: number,
    readonly bytes: number,
  ) {}
}

export interface WasmBackendOptions {
  /** Threads including the calling one. Default: the available cores. */
  threads?: number;
  /** Use the relaxed-SIMD (FMA) build: 'auto' (default) when the engine validates it. */
  relaxedSimd?: boolean | 'auto';
  /** Shared memory (needed for more than one thread). Default: where the host allows it. */
  sharedMemory?: boolean;
}

/** [start, end) ranges covering [0, total) in `parts` pieces, boundaries rounded to `align`. */
function split(total: number, parts: number, align = 1): [number, number][] {
  const out: [number, number][] = [];
  const step = Math.ceil(total / parts / align) * align;
  for (let start = 0; start < total; start += step) out.push([start, Math.min(total, start + step)]);
  return out;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly precision = 'float32';
  private free_: { offset: number; bytes: number }[] = [];
  private top = HEAP_BASE;
  private heap: Float32Array;
  private readonly geometry: number;
  private scratchBytes = 0;
  private scratch: number[] = [];

  private constructor(
    readonly memory: WebAssembly.Memory,
    private readonly exports: KernelExports,
    private readonly pool: ThreadPool,
    readonly simd: 'relaxed' | 'simd',
  ) {
    this.heap = new Float32Array(memory.buffer);
    this.geometry = this.allocateBytes(64);
  }

  /**
   * Loads the kernels and starts the worker threads. Where memory cannot be shared (a browser page
   * without cross-origin isolation) the backend runs on one thread, on an unshared-memory build;
   * asking for more threads there is an error. In a browser, run a multi-threaded backend in a
   * Worker: the page's own thread may not block, so it would spin while the workers compute.
   */
  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const host = await platform();
    const isolate = 'serve it cross-origin isolated (COOP: same-origin, COEP: require-corp)';
    const shared = options.sharedMemory ?? host.canShareMemory();
    if (shared && !host.canShareMemory()) throw new Error(`this page cannot share memory: ${isolate}`);
    const threads = options.threads ?? (shared ? host.cores() : 1);
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
    if (threads > 1 && !shared)
      throw new Error(
        `${threads} threads need shared memory, which ` +
          `${host.canShareMemory() ? 'was turned off' : `this page does not have: ${isolate}`}; use 1 thread`,
      );
    const wantRelaxed = options.relaxedSimd ?? 'auto';
    const relaxed = wantRelaxed === false ? null : await host.wasmBytes({ relaxed: true, shared });
    const useRelaxed = relaxed !== null && WebAssembly.validate(relaxed);
    if (wantRelaxed === true && !useRelaxed) throw new Error('this JavaScript engine cannot run relaxed SIMD; use relaxedSimd: false');
    const module = await WebAssembly.compile(useRelaxed ? relaxed : await host.wasmBytes({ relaxed: false, shared }));
    const memory = new WebAssembly.Memory({ initial: HEAP_BASE / PAGE + 16, maximum: MAX_PAGES, shared });
    const instance = await WebAssembly.instantiate(module, {
      env: {
        memory,
        abort: () => {
          throw new Error('wasm abort');
        },
      },
    });
    const exports = instance.exports as unknown as KernelExports;
    const pool = await ThreadPool.start(threads, exports, module, memory, host);
    return new WasmBackend(memory, exports, pool, useRelaxed ? 'relaxed' : 'simd');
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** With `true`, kernels run on the calling thread alone until set back to `false` (the workers
   * sleep): for a data-parallel trainer whose other threads run replicas of the net. */
  set singleThreaded(on: boolean) {
    this.pool.solo = on;
  }

  /** Bytes of wasm memory in use (buffers and per-thread scratch). */
  get allocatedBytes(): number {
    return this.top - HEAP_BASE - this.free_.reduce((n, f) => n + f.bytes, 0);
  }

  allocate(length: number): DeviceBuffer {
    if (!Number.isInteger(length) || length < 0) throw new Error(`allocate: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(ALIGN, Math.ceil((length * 4) / ALIGN) * ALIGN);
    return new WasmBuffer(this, this.allocateBytes(bytes), length, bytes);
  }

  free(buffer: DeviceBuffer): void {
    const b = this.own(buffer);
    this.release(b.offset, b.bytes);
    b.offset = -1;
  }

  write(buffer: DeviceBuffer, data: ArrayLike<number>, offset = 0): void {
    const b = this.own(buffer);
    if (offset + data.length > b.length)
      throw new Error(`write: ${data.length} values at offset ${offset} do not fit a buffer of ${b.length}`);
    this.view(b).set(data, offset);
  }

  readSync(buffer: DeviceBuffer): FloatArray {
    return this.view(this.own(buffer)).slice();
  }

  async read(buffer: DeviceBuffer): Promise<FloatArray> {
    return this.readSync(buffer);
  }

  async flush(): Promise<void> {}

  /** Stops the worker threads; the backend is unusable afterwards. */
  async dispose(): Promise<void> {
    await this.pool.terminate();
  }

  run<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], buffers: KernelTable[K]['buffers']): void {
    const compiled = (this.kernels as Partial<Record<KernelName, (p: unknown, b: Record<string, WasmBuffer>) => void>>)[kernel];
    const owned: Record<string, WasmBuffer> = {};
    for (const [role, buffer] of Object.entries(buffers as Record<string, DeviceBuffer | undefined>))
      if (buffer) owned[role] = this.own(buffer);
    if (compiled) {
      compiled(params, owned);
      return;
    }
    const views: Record<string, FloatArray> = {};
    for (const [role, b] of Object.entries(owned)) views[role] = this.view(b);
    (referenceKernels[kernel] as HostKernel<K>)(params, views as never);
  }

  private readonly kernels: {
    [K in KernelName]?: (p: KernelTable[K]['params'], b: { [R in keyof KernelTable[K]['buffers']]-?: WasmBuffer }) => void;
  } = {
    conv2d_forward: (g, b) => {
      // Columns are (image, pixel) over the whole batch, so threads split even a batch of small maps evenly.
      const ohw = g.outHeight * g.outWidth,
        taps = (g.inChannels / g.groups) * g.kernelH * g.kernelW;
      const ranges = split(g.batch * ohw, this.parts(g.batch * g.outChannels * ohw * taps), 8);
      const chunk = panelColumns(taps, ranges[0]![1] - ranges[0]![0]);
      this.ensureScratch(g.groups * packedSize(g.outChannels / g.groups, taps) + (taps + g.outChannels / g.groups) * chunk);
      const geo = this.writeConvGeometry(g);
      this.pool.run(
        ranges.map(([j0, j1]) => ({
          fn: 'conv2dForward',
          args: [geo, b.x.offset, b.weight.offset, b.bias?.offset ?? 0, b.y.offset, j0, j1, chunk],
          scratch: 'col+gemm',
        })),
      );
    },
    conv2d_backward_data: (g, b) => {
      const cg = g.inChannels / g.groups,
        kk = g.kernelH * g.kernelW,
        ohw = g.outHeight * g.outWidth;
      const perGroup = Math.max(1, Math.ceil(this.parts(g.batch * g.outChannels * ohw * cg * kk) / g.groups));
      const chunks = Array.from({ length: g.groups }, (_, group) =>
        split(cg, perGroup).map(([c0, c1]) => [group * cg + c0, group * cg + c1] as const),
      ).flat();
      const rows = Math.max(...chunks.map(([c0, c1]) => c1 - c0)) * kk;
      const chunk = panelColumns(rows, g.batch * ohw);
      this.ensureScratch(packedSize(rows, g.outChannels / g.groups) + (rows + g.outChannels / g.groups) * chunk);
      const geo = this.writeConvGeometry(g);
      this.pool.run(
        chunks.map(([c0, c1]) => ({
          fn: 'conv2dBackwardData',
          args: [geo, b.dy.offset, b.weight.offset, b.dx.offset, c0, c1, chunk],
          scratch: 'col+gemm',
        })),
      );
    },
    conv2d_backward_filter: (g, b) => {
      const ohw = g.outHeight * g.outWidth,
        taps = (g.inChannels / g.groups) * g.kernelH * g.kernelW;
      const ranges = split(taps, this.parts(g.batch * g.outChannels * ohw * taps), 8);
      const rows = ranges[0]![1] - ranges[0]![0];
      // (image, pixel) columns are this GEMM's inner dimension: at least one KC block of them per
      // call, within one image when its map is that large (then dy is read in place, not gathered).
      const chunk =
        ohw >= 256
          ? Math.min(ohw, Math.max(panelColumns(rows, ohw), 256))
          : Math.max(panelColumns(rows, g.batch * ohw), Math.min(g.batch * ohw, 256));
      this.ensureScratch((rows + g.outChannels / g.groups) * chunk);
      const geo = this.writeConvGeometry(g);
      const tasks: Task[] = ranges.map(([r0, r1]) => ({
        fn: 'conv2dBackwardFilter',
        args: [geo, b.x.offset, b.dy.offset, b.dweight.offset, r0, r1, chunk],
        scratch: 'col+gemm',
      }));
      if (b.dbias) {
        for (const [k0, k1] of split(g.outChannels, this.pool.threads))
          tasks.push({ fn: 'biasBackward', args: [b.dy.offset, b.dbias.offset, g.batch, g.outChannels, ohw, k0, k1] });
      }
      this.pool.run(tasks);
    },
    maxpool2d_forward: (g, b) => {
      const geo = this.writePoolGeometry(g);
      this.ensureScratch(0); // the GEMM scratch holds the row of window maxima
      this.pool.run(
        this.planeRanges(g).map(([p0, p1]) => ({ fn: 'maxpool2dForward', args: [geo, b.x.offset, b.y.offset, p0, p1], scratch: 'gemm' })),
      );
    },
    maxpool2d_backward: (g, b) => {
      const geo = this.writePoolGeometry(g);
      this.ensureScratch(0); // the GEMM scratch holds each row's column maxima
      this.pool.run(
        this.planeRanges(g).map(([p0, p1]) => ({
          fn: 'maxpool2dBackward',
          args: [geo, b.x.offset, b.dy.offset, b.dx.offset, p0, p1],
          scratch: 'gemm',
        })),
      );
    },
    lrn_forward: (p, b) => {
      const ranges = split(p.batch, this.elementParts(p.batch * p.channels * p.spatial * p.size));
      this.pool.run(
        ranges.map(([n0, n1]) => ({
          fn: 'lrnForward',
          args: [b.x.offset, b.y.offset, b.scale.offset, p.channels, p.spatial, p.size, p.alpha, p.beta, p.k, n0, n1],
        })),
      );
    },
    lrn_backward: (p, b) => {
      const ranges = split(p.batch, this.elementParts(p.batch * p.channels * p.spatial * p.size));
      this.pool.run(
        ranges.map(([n0, n1]) => ({
          fn: 'lrnBackward',
          args: [b.x.offset, b.y.offset, b.scale.offset, b.dy.offset, b.dx.offset, p.channels, p.spatial, p.size, p.alpha, p.beta, n0, n1],
        })),
      );
    },
    activation_forward: (p, b) => this.elementwise('activationForward', p.length, [ACTIVATIONS[p.fn], b.x.offset, b.y.offset]),
    activation_backward: (p, b) =>
      this.elementwise('activationBackward', p.length, [ACTIVATIONS[p.fn], b.y.offset, b.dy.offset, b.dx.offset]),
    dropout_forward: (p, b) => this.elementwise('dropoutForward', p.length, [b.x.offset, b.y.offset, b.mask.offset, p.p, p.seed, p.stream]),
    multiply: (p, b) => this.elementwise('multiply', p.length, [b.a.offset, b.b.offset, b.y.offset]),
    accumulate: (p, b) => this.elementwise('accumulate', p.length, [b.x.offset, b.y.offset]),
    random_fill: (p, b) =>
      this.elementwise('randomFill', p.length, [b.y.offset, p.distribution === 'normal' ? 1 : 0, p.a, p.b, p.seed, p.stream]),
    sgd_update: (p, b) =>
      this.elementwise('sgdUpdate', p.length, [b.weight.offset, b.grad.offset, b.velocity.offset, p.lr, p.momentum, p.weightDecay]),
    gemm: (p, b) => {
      const rsa = p.transA ? 1 : p.K,
        csa = p.transA ? p.M : 1,
        rsb = p.transB ? 1 : p.N,
        csb = p.transB ? p.K : 1;
      this.gemmSplitColumns(p.M, p.N, p.K, p.alpha, b.a.offset, rsa, csa, b.b.offset, rsb, csb, p.beta, b.c.offset, p.N);
    },
    linear_forward: (p, b) => {
      if (p.batch <= SMALL_BATCH) {
        const ranges = split(p.outFeatures, this.parts(p.batch * p.inFeatures * p.outFeatures), 4);
        this.pool.run(
          ranges.map(([j0, j1]) => ({
            fn: 'linearRows',
            args: [b.x.offset, b.weight.offset, b.bias?.offset ?? 0, b.y.offset, p.batch, p.inFeatures, p.outFeatures, j0, j1],
          })),
        );
        return;
      }
      const y = this.view(b.y);
      if (b.bias) {
        const bias = this.view(b.bias);
        for (let n = 0; n < p.batch; n++) y.set(bias, n * p.outFeatures);
      }
      // y = x·Wᵀ: B(k, j) = W[j][k]
      this.gemmSplitColumns(
        p.batch,
        p.outFeatures,
        p.inFeatures,
        1,
        b.x.offset,
        p.inFeatures,
        1,
        b.weight.offset,
        1,
        p.inFeatures,
        b.bias ? 1 : 0,
        b.y.offset,
        p.outFeatures,
      );
    },
    linear_backward_data: (p, b) => {
      this.gemmSplitColumns(
        p.batch,
        p.inFeatures,
        p.outFeatures,
        1,
        b.dy.offset,
        p.outFeatures,
        1,
        b.weight.offset,
        p.inFeatures,
        1,
        0,
        b.dx.offset,
        p.inFeatures,
      );
    },
    linear_backward_params: (p, b) => {
      // dW = dyᵀ·x, split by rows of dW (output features); A(i, k) = dy[k][i]
      this.ensureScratch(0);
      const ranges = split(p.outFeatures, this.parts(p.batch * p.inFeatures * p.outFeatures), 4);
      const tasks: Task[] = ranges.map(([i0, i1]) => ({
        fn: 'gemm',
        args: [
          i1 - i0,
          p.inFeatures,
          p.batch,
          1,
          b.dy.offset + 4 * i0,
          1,
          p.outFeatures,
          b.x.offset,
          p.inFeatures,
          1,
          0,
          b.dweight.offset + 4 * i0 * p.inFeatures,
          p.inFeatures,
        ],
        scratch: 'gemm',
      }));
      if (b.dbias) tasks.push({ fn: 'biasBackward', args: [b.dy.offset, b.dbias.offset, p.batch, p.outFeatures, 1, 0, p.outFeatures] });
      this.pool.run(tasks);
    },
  };

  /** C(M×N) = alpha·A·B + beta·C with the columns of C split across threads. */
  private gemmSplitColumns(
    M: number,
    N: number,
    K: number,
    alpha: number,
    a: number,
    rsa: number,
    csa: number,
    b: number,
    rsb: number,
    csb: number,
    beta: number,
    c: number,
    ldc: number,
  ): void {
    this.ensureScratch(0);
    const ranges = split(N, this.parts(M * N * K), 8);
    this.pool.run(
      ranges.map(([j0, j1]) => ({
        fn: 'gemm',
        args: [M, j1 - j0, K, alpha, a, rsa, csa, b + 4 * j0 * csb, rsb, csb, beta, c + 4 * j0, ldc],
        scratch: 'gemm',
      })),
    );
  }

  private elementwise(fn: Task['fn'], length: number, args: number[]): void {
    const ranges = split(length, this.elementParts(length), 4);
    this.pool.run(ranges.map(([i0, i1]) => ({ fn, args: [...args, i0, i1] })));
  }

  /** Tasks for a compute-bound kernel: two per thread when there are several, so the shared task
   * counter can even out threads that run at different speeds (measured: +12 % on the paper net's
   * training step, 2 threads, three interleaved rounds; inference unchanged). */
  private parts(macs: number): number {
    if (macs < PARALLEL_MACS || this.pool.threads === 1) return 1;
    return TASKS_PER_THREAD * this.pool.threads;
  }

  private elementParts(elements: number): number {
    return elements < PARALLEL_ELEMENTS ? 1 : this.pool.threads;
  }

  private planeRanges(g: Pool2dGeometry): [number, number][] {
    return split(g.batch * g.channels, this.elementParts(g.batch * g.channels * g.outHeight * g.outWidth * g.kernelH * g.kernelW));
  }

  private writeConvGeometry(g: Conv2dGeometry): number {
    new Int32Array(this.memory.buffer, this.geometry, 16).set([
      g.batch,
      g.inChannels,
      g.inHeight,
      g.inWidth,
      g.outChannels,
      g.outHeight,
      g.outWidth,
      g.kernelH,
      g.kernelW,
      g.strideH,
      g.strideW,
      g.padTop,
      g.padLeft,
      g.dilationH,
      g.dilationW,
      g.groups,
    ]);
    return this.geometry;
  }

  private writePoolGeometry(g: Pool2dGeometry): number {
    new Int32Array(this.memory.buffer, this.geometry, 14).set([
      g.batch,
      g.channels,
      g.inHeight,
      g.inWidth,
      g.outHeight,
      g.outWidth,
      g.kernelH,
      g.kernelW,
      g.strideH,
      g.strideW,
      g.padTop,
      g.padLeft,
      g.dilationH,
      g.dilationW,
    ]);
    return this.geometry;
  }

  /** Gives every thread a column buffer of at least `colFloats` and a GEMM scratch area (kept and
   * reused: after the first step of a net, no kernel allocates). */
  private ensureScratch(colFloats: number): void {
    const bytes = Math.ceil((4 * (colFloats + this.exports.GEMM_SCRATCH.value)) / ALIGN) * ALIGN;
    if (bytes <= this.scratchBytes) return;
    for (const offset of this.scratch) this.release(offset, this.scratchBytes);
    this.scratchBytes = bytes;
    this.scratch = Array.from({ length: this.pool.size }, () => this.allocateBytes(bytes));
    this.scratch.forEach((offset, t) => this.pool.setScratch(t, offset + 4 * this.exports.GEMM_SCRATCH.value, offset));
  }

  private view(b: WasmBuffer): Float32Array {
    if (this.heap.buffer.byteLength !== this.memory.buffer.byteLength) this.heap = new Float32Array(this.memory.buffer);
    return this.heap.subarray(b.offset / 4, b.offset / 4 + b.length);
  }

  private own(buffer: DeviceBuffer): WasmBuffer {
    if (!(buffer instanceof WasmBuffer) || buffer.backend !== this) throw new Error('buffer belongs to another backend');
    if (buffer.offset < 0) throw new Error('buffer was freed');
    return buffer;
  }

  /** First fit over the free list; grows the memory when nothing fits. */
  private allocateBytes(bytes: number): number {
    const index = this.free_.findIndex((f) => f.bytes >= bytes);
    if (index >= 0) {
      const block = this.free_[index]!;
      const offset = block.offset;
      if (block.bytes === bytes) this.free_.splice(index, 1);
      else {
        block.offset += bytes;
        block.bytes -= bytes;
      }
      return offset;
    }
    const offset = this.top;
    const end = offset + bytes;
    if (end > MAX_PAGES * PAGE) throw new Error(`wasm memory exhausted: ${(end / 2 ** 30).toFixed(2)} GiB needed, wasm32 addresses 4 GiB`);
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return offset;
  }

  private release(offset: number, bytes: number): void {
    this.free_.push({ offset, bytes });
    this.free_.sort((a, b) => a.offset - b.offset);
    const merged: { offset: number; bytes: number }[] = [];
    for (const f of this.free_) {
      const last = merged[merged.length - 1];
      if (last && last.offset + last.bytes === f.offset) last.bytes += f.bytes;
      else merged.push({ ...f });
    }
    const tail = merged[merged.length - 1];
    if (tail && tail.offset + tail.bytes === this.top) {
      this.top = tail.offset;
      merged.pop();
    }
    this.free_ = merged;
  }
}

const ACTIVATIONS: Record<ActivationFn, number> = { relu: 0, tanh: 1, sigmoid: 2 };

/** Floats of one im2col panel: small enough to stay in L2 between its writing and the GEMM reading it. */
const PANEL_FLOATS = 1 << 16;

/** Floats of an M×K matrix packed whole for the GEMM (rows rounded up to the micro-kernel's 4). */
function packedSize(M: number, K: number): number {
  return Math.ceil(M / 4) * 4 * K;
}

/** Pixels per im2col panel of `rows` rows: a multiple of 8 (the micro-kernel's width), at most `total`. */
function panelColumns(rows: number, total: number): number {
  return Math.min(total, Math.max(8, Math.floor(PANEL_FLOATS / rows / 8) * 8));
}
