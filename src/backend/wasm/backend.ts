/**
 * The wasm backend: AssemblyScript kernels compiled to WebAssembly SIMD128 (with relaxed-SIMD FMA
 * where the engine has it), run by a pool of threads over one shared WebAssembly.Memory. Buffers
 * are regions of that memory; kernels it does not compile (the cheap, memory-bound ones) run the
 * reference backend's TypeScript over views of the same memory, so nothing is ever copied.
 */
import type { Backend, DeviceBuffer, FloatArray } from '../backend.js';
import {
  type ActivationFn,
  type AdaptivePoolGeometry,
  KERNEL_WRITES,
  type KernelName,
  type KernelTable,
  type Pool2dGeometry,
  type WindowGeometry,
} from '../kernels.js';
import { type HostKernel, referenceKernels } from '../reference/backend.js';
import type { KernelExports } from './exports.js';
import { type HostKernels, type KernelHost, ROW_BY_ROW_BATCH, type WasmExtension } from './host.js';
import { platform } from './platform.js';
import { Allocator, PAGE } from './allocator.js';
import * as G from './geometry.js';
import { type GemmArgs, task } from './tasks.js';
import { type Task, ThreadPool } from './threads.js';

/** Below this byte offset: the module's own static data. */
const HEAP_BASE = 1 << 20;
const ALIGN = 64;
const MAX_PAGES = 65536; // 4 GiB, all of wasm32
/** Work below this many multiply-adds (or elements, for memory-bound kernels) stays on one thread. */
const PARALLEL_MACS = 2e6;
const PARALLEL_ELEMENTS = 1 << 16;
const TASKS_PER_THREAD = 2;

class WasmBuffer implements DeviceBuffer {
  constructor(
    readonly backend: WasmBackend,
    public offset: number,
    readonly length: number,
    readonly bytes: number,
    /** Changes whenever the contents may have (a write, or a kernel that writes it): unique across
     * the backend's buffers, so a copy made from a buffer at one stamp is valid while it holds. */
    public stamp: number,
  ) {}
}

export interface WasmBackendOptions {
  /** Threads including the calling one. Default: the available cores. */
  threads?: number;
  /** Use the relaxed-SIMD (FMA) build: 'auto' (default) when the engine validates it. */
  relaxedSimd?: boolean | 'auto';
  /** Shared memory (needed for more than one thread). Default: where the host allows it. */
  sharedMemory?: boolean;
  /** Kernels of another backend on this one's memory and threads (the native backend's). */
  extension?: WasmExtension;
}

/** [start, end) ranges covering [0, total) in `parts` pieces, boundaries rounded to `align`. */
function split(total: number, parts: number, align = 1): [number, number][] {
  const out: [number, number][] = [];
  const step = Math.ceil(total / parts / align) * align;
  for (let start = 0; start < total; start += step) out.push([start, Math.min(total, start + step)]);
  return out;
}

export class WasmBackend implements Backend {
  readonly name: string;
  readonly precision = 'float32';
  private readonly allocator: Allocator;
  private heap: Float32Array;
  private readonly geometry: number;
  private scratchBytes = 0;
  private scratch: number[] = [];
  /** The last buffer stamp handed out. */
  private stamps = 0;
  /** An extension's workspace (the native route's im2col columns and GEMM panels). */
  private workspace = 0;
  private workspaceFloats = 0;

  private constructor(
    readonly memory: WebAssembly.Memory,
    private readonly exports: KernelExports,
    private readonly pool: ThreadPool,
    readonly simd: 'relaxed' | 'simd',
    readonly extension?: WasmExtension,
  ) {
    this.name = extension?.name ?? 'wasm';
    if (extension) Object.assign(this.kernels, extension.kernels(this.kernelHost(), { ...this.kernels } as HostKernels));
    this.heap = new Float32Array(memory.buffer);
    this.allocator = new Allocator(memory, HEAP_BASE, MAX_PAGES * PAGE, ALIGN);
    this.geometry = this.allocator.allocate(4 * G.GEOMETRY_FIELDS);
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
    options.extension?.setThreads(threads);
    return new WasmBackend(memory, exports, pool, useRelaxed ? 'relaxed' : 'simd', options.extension);
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** Bytes of wasm memory in use (buffers and per-thread scratch). */
  get allocatedBytes(): number {
    return this.allocator.usedBytes;
  }

  allocate(length: number): DeviceBuffer {
    if (!Number.isInteger(length) || length < 0) throw new Error(`allocate: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(ALIGN, Math.ceil((length * 4) / ALIGN) * ALIGN);
    return new WasmBuffer(this, this.allocator.allocate(bytes), length, bytes, ++this.stamps);
  }

  free(buffer: DeviceBuffer): void {
    const b = this.own(buffer);
    this.allocator.release(b.offset, b.bytes);
    b.offset = -1;
  }

  write(buffer: DeviceBuffer, data: ArrayLike<number>, offset = 0): void {
    const b = this.own(buffer);
    if (offset + data.length > b.length)
      throw new Error(`write: ${data.length} values at offset ${offset} do not fit a buffer of ${b.length}`);
    this.extension?.written?.(b, offset, data.length);
    this.view(b).set(data, offset);
    b.stamp = ++this.stamps;
  }

  hostView(buffer: DeviceBuffer): Float32Array {
    const b = this.own(buffer);
    this.extension?.written?.(b, 0, 0); // a blocked layout made plain: the host reads it as it is
    b.stamp = ++this.stamps;
    return this.view(b);
  }

  readSync(buffer: DeviceBuffer): FloatArray {
    const b = this.own(buffer);
    return this.extension?.read?.(b) ?? this.view(b).slice();
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
    this.extension?.prepare?.(kernel, params, owned);
    for (const role of KERNEL_WRITES[kernel] as readonly string[]) if (owned[role]) owned[role].stamp = ++this.stamps;
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
      const geometry = this.writeGeometry(g, g);
      const [x, weight, bias, y] = [b.x.offset, b.weight.offset, b.bias?.offset ?? 0, b.y.offset];
      this.pool.run(ranges.map((range) => task.conv2dForward({ geometry, x, weight, bias, y, range, chunk })));
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
      const geometry = this.writeGeometry(g, g);
      const [dy, weight, dx] = [b.dy.offset, b.weight.offset, b.dx.offset];
      this.pool.run(chunks.map((range) => task.conv2dBackwardData({ geometry, dy, weight, dx, range, chunk })));
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
      const geometry = this.writeGeometry(g, g);
      const [x, dy, dweight] = [b.x.offset, b.dy.offset, b.dweight.offset];
      const tasks = ranges.map((range) => task.conv2dBackwardFilter({ geometry, x, dy, dweight, range, chunk }));
      if (b.dbias) {
        const dbias = b.dbias.offset;
        for (const range of split(g.outChannels, this.pool.threads))
          tasks.push(task.biasBackward({ dy, dbias, batch: g.batch, channels: g.outChannels, spatial: ohw, range }));
      }
      this.pool.run(tasks);
    },
    maxpool2d_forward: (g, b) => {
      const geometry = this.writeGeometry(g, { inChannels: g.channels, outChannels: g.channels, groups: 1 });
      this.ensureScratch(0); // the GEMM scratch holds the row of window maxima
      const [x, y] = [b.x.offset, b.y.offset];
      this.pool.run(this.planeRanges(g).map((range) => task.maxpool2dForward({ geometry, x, y, range })));
    },
    maxpool2d_backward: (g, b) => {
      const geometry = this.writeGeometry(g, { inChannels: g.channels, outChannels: g.channels, groups: 1 });
      this.ensureScratch(0); // the GEMM scratch holds each row's column maxima
      const [x, dy, dx] = [b.x.offset, b.dy.offset, b.dx.offset];
      this.pool.run(this.planeRanges(g).map((range) => task.maxpool2dBackward({ geometry, x, dy, dx, range })));
    },
    adaptive_avgpool2d_forward: (g, b) => this.adaptivePool(g, b.x.offset, b.y.offset, false),
    adaptive_avgpool2d_backward: (g, b) => this.adaptivePool(g, b.dy.offset, b.dx.offset, true),
    lrn_forward: (p, b) => {
      const ranges = split(p.batch, this.elementParts(p.batch * p.channels * p.spatial * p.size));
      const buffers = { x: b.x.offset, y: b.y.offset, scale: b.scale.offset };
      this.pool.run(ranges.map((range) => task.lrnForward({ ...p, ...buffers, range })));
    },
    lrn_backward: (p, b) => {
      const ranges = split(p.batch, this.elementParts(p.batch * p.channels * p.spatial * p.size));
      const buffers = { x: b.x.offset, y: b.y.offset, scale: b.scale.offset, dy: b.dy.offset, dx: b.dx.offset };
      this.pool.run(ranges.map((range) => task.lrnBackward({ ...p, ...buffers, range })));
    },
    activation_forward: (p, b) =>
      this.elementwise(p.length, (range) => task.activationForward({ fn: ACTIVATIONS[p.fn], x: b.x.offset, y: b.y.offset, range })),
    activation_backward: (p, b) =>
      this.elementwise(p.length, (range) =>
        task.activationBackward({ fn: ACTIVATIONS[p.fn], y: b.y.offset, dy: b.dy.offset, dx: b.dx.offset, range }),
      ),
    dropout_forward: (p, b) =>
      this.elementwise(p.length, (range) => task.dropoutForward({ ...p, x: b.x.offset, y: b.y.offset, mask: b.mask.offset, range })),
    multiply: (p, b) => this.elementwise(p.length, (range) => task.multiply({ a: b.a.offset, b: b.b.offset, y: b.y.offset, range })),
    accumulate: (p, b) => this.elementwise(p.length, (range) => task.accumulate({ x: b.x.offset, y: b.y.offset, range })),
    random_fill: (p, b) =>
      this.elementwise(p.length, (range) => task.randomFill({ ...p, y: b.y.offset, normal: p.distribution === 'normal', range })),
    sgd_update: (p, b) =>
      this.elementwise(p.length, (range) =>
        task.sgdUpdate({ ...p, weight: b.weight.offset, grad: b.grad.offset, velocity: b.velocity.offset, range }),
      ),
    gemm: (p, b) => {
      const [rowStrideA, colStrideA] = p.transA ? [1, p.M] : [p.K, 1];
      const [rowStrideB, colStrideB] = p.transB ? [1, p.K] : [p.N, 1];
      const { M, N, K, alpha, beta } = p;
      this.gemmSplitColumns({
        M,
        N,
        K,
        alpha,
        a: b.a.offset,
        rowStrideA,
        colStrideA,
        b: b.b.offset,
        rowStrideB,
        colStrideB,
        beta,
        c: b.c.offset,
        ldc: N,
      });
    },
    linear_forward: (p, b) => {
      if (p.batch <= ROW_BY_ROW_BATCH) {
        const ranges = split(p.outFeatures, this.parts(p.batch * p.inFeatures * p.outFeatures), 4);
        const buffers = { x: b.x.offset, weight: b.weight.offset, bias: b.bias?.offset ?? 0, y: b.y.offset };
        this.pool.run(ranges.map((range) => task.linearRows({ ...p, ...buffers, range })));
        return;
      }
      const y = this.view(b.y);
      if (b.bias) {
        const bias = this.view(b.bias);
        for (let n = 0; n < p.batch; n++) y.set(bias, n * p.outFeatures);
      }
      // y = x·Wᵀ: B(k, j) = W[j][k]
      const [M, N, K] = [p.batch, p.outFeatures, p.inFeatures];
      const x = { a: b.x.offset, rowStrideA: K, colStrideA: 1 },
        w = { b: b.weight.offset, rowStrideB: 1, colStrideB: K };
      this.gemmSplitColumns({ M, N, K, alpha: 1, ...x, ...w, beta: b.bias ? 1 : 0, c: b.y.offset, ldc: N });
    },
    linear_backward_data: (p, b) => {
      // dx = dy·W
      const [M, N, K] = [p.batch, p.inFeatures, p.outFeatures];
      const dy = { a: b.dy.offset, rowStrideA: K, colStrideA: 1 },
        w = { b: b.weight.offset, rowStrideB: N, colStrideB: 1 };
      this.gemmSplitColumns({ M, N, K, alpha: 1, ...dy, ...w, beta: 0, c: b.dx.offset, ldc: N });
    },
    linear_backward_params: (p, b) => {
      // dW = dyᵀ·x, split by rows of dW (output features); A(i, k) = dy[k][i]
      this.ensureScratch(0);
      const ranges = split(p.outFeatures, this.parts(p.batch * p.inFeatures * p.outFeatures), 4);
      const [N, K] = [p.inFeatures, p.batch];
      const x = { b: b.x.offset, rowStrideB: N, colStrideB: 1 };
      const tasks = ranges.map(([i0, i1]) => {
        const dy = { a: b.dy.offset + 4 * i0, rowStrideA: 1, colStrideA: p.outFeatures };
        return task.gemm({ M: i1 - i0, N, K, alpha: 1, ...dy, ...x, beta: 0, c: b.dweight.offset + 4 * i0 * N, ldc: N });
      });
      if (b.dbias) {
        const rows = { batch: p.batch, channels: p.outFeatures, spatial: 1, range: [0, p.outFeatures] as const };
        tasks.push(task.biasBackward({ dy: b.dy.offset, dbias: b.dbias.offset, ...rows }));
      }
      this.pool.run(tasks);
    },
  };

  /** What an extension may use of this backend. */
  private kernelHost(): KernelHost {
    return {
      run: (tasks) => {
        this.ensureScratch(0);
        this.pool.run(tasks);
      },
      convGeometry: (g) => this.writeGeometry(g, g),
      workspace: (floats) => {
        if (floats > this.workspaceFloats) {
          if (this.workspaceFloats > 0) this.allocator.release(this.workspace, 4 * this.workspaceFloats);
          this.workspace = this.allocator.allocate(4 * floats);
          this.workspaceFloats = floats;
        }
        return this.workspace;
      },
      at: (offset) => new Float32Array(this.memory.buffer, offset),
      perThread: (total, align = 1) => split(total, Math.min(total, this.pool.threads), align),
      view: (b) => this.view(b as WasmBuffer),
    };
  }

  /** C(M×N) = alpha·A·B + beta·C with the columns of C split across threads. */
  private gemmSplitColumns(g: GemmArgs): void {
    this.ensureScratch(0);
    const ranges = split(g.N, this.parts(g.M * g.N * g.K), 8);
    this.pool.run(ranges.map(([j0, j1]) => task.gemm({ ...g, N: j1 - j0, b: g.b + 4 * j0 * g.colStrideB, c: g.c + 4 * j0 })));
  }

  /** A memory-bound kernel over `length` elements, split into one range per thread when large. */
  private elementwise(length: number, build: (range: [number, number]) => Task): void {
    this.pool.run(split(length, this.elementParts(length), 4).map(build));
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

  private adaptivePool(g: AdaptivePoolGeometry, src: number, dst: number, backward: boolean): void {
    const ranges = split(g.batch * g.channels, this.elementParts(g.batch * g.channels * g.inHeight * g.inWidth));
    this.pool.run(ranges.map((range) => task.adaptiveAvgpool2d({ ...g, src, dst, range, backward })));
  }

  private planeRanges(g: Pool2dGeometry): [number, number][] {
    return split(g.batch * g.channels, this.elementParts(g.batch * g.channels * g.outHeight * g.outWidth * g.kernelH * g.kernelW));
  }

  /** Fills the geometry block the convolution and pooling kernels read (geometry.ts). */
  private writeGeometry(g: WindowGeometry, channels: { inChannels: number; outChannels: number; groups: number }): number {
    const block = new Int32Array(this.memory.buffer, this.geometry, G.GEOMETRY_FIELDS);
    block[G.BATCH] = g.batch;
    block[G.IN_C] = channels.inChannels;
    block[G.IN_H] = g.inHeight;
    block[G.IN_W] = g.inWidth;
    block[G.OUT_C] = channels.outChannels;
    block[G.OUT_H] = g.outHeight;
    block[G.OUT_W] = g.outWidth;
    block[G.K_H] = g.kernelH;
    block[G.K_W] = g.kernelW;
    block[G.STRIDE_H] = g.strideH;
    block[G.STRIDE_W] = g.strideW;
    block[G.PAD_T] = g.padTop;
    block[G.PAD_L] = g.padLeft;
    block[G.DIL_H] = g.dilationH;
    block[G.DIL_W] = g.dilationW;
    block[G.GROUPS] = channels.groups;
    return this.geometry;
  }

  /** Gives every thread a column buffer of at least `colFloats` and a GEMM scratch area (kept and
   * reused: after the first step of a net, no kernel allocates). */
  private ensureScratch(colFloats: number): void {
    const bytes = Math.ceil((4 * (colFloats + this.exports.GEMM_SCRATCH.value)) / ALIGN) * ALIGN;
    if (bytes <= this.scratchBytes) return;
    for (const offset of this.scratch) this.allocator.release(offset, this.scratchBytes);
    this.scratchBytes = bytes;
    this.scratch = Array.from({ length: this.pool.size }, () => this.allocator.allocate(bytes));
    this.scratch.forEach((offset, t) => this.pool.setScratch(t, offset + 4 * this.exports.GEMM_SCRATCH.value, offset));
  }

  private view(b: { offset: number; length: number }): Float32Array {
    if (this.heap.buffer.byteLength !== this.memory.buffer.byteLength) this.heap = new Float32Array(this.memory.buffer);
    return this.heap.subarray(b.offset / 4, b.offset / 4 + b.length);
  }

  private own(buffer: DeviceBuffer): WasmBuffer {
    if (!(buffer instanceof WasmBuffer) || buffer.backend !== this) throw new Error('buffer belongs to another backend');
    if (buffer.offset < 0) throw new Error('buffer was freed');
    return buffer;
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
