/**
 * The native route: every GEMM of the convolutions and fully-connected layers, forward and
 * backward, goes to the system's BLAS (blas.ts) on the wasm memory itself; what is not a GEMM —
 * im2col, col2im, spreading a panel back to NCHW, the bias gradient — stays in the wasm kernels on
 * the thread pool. A convolution runs over chunks of images whose columns sit side by side, so
 * small feature maps still make wide GEMMs.
 */
import type { Conv2dGeometry, KernelName, KernelTable, LinearParams } from '../kernels.js';
import type { KernelHost } from '../wasm/host.js';
import { task } from '../wasm/tasks.js';
import type { Blas } from './blas.js';
import type { Dnnl, Placed } from './dnnl.js';
import { linearRoute, NATIVE_FROM } from './policy.js';
import { stripConvolution } from './strips.js';

type GemmFlags = { transA?: boolean; transB?: boolean; alpha?: number; beta?: number };

type Buffers<K extends KernelName> = { [R in keyof KernelTable[K]['buffers']]-?: Placed };
export type NativeKernels = { [K in KernelName]?: (p: KernelTable[K]['params'], b: Buffers<K>) => void };

/** Floats of the workspace a chunk of images may take (im2col columns and a GEMM output panel):
 * 64 MiB, wide enough that BLAS runs near its peak, small enough to stay out of the way. */
const WORKSPACE_FLOATS = 1 << 24;

/** The native kernels; `wasm` is the table they replace, for the cases it still does better. */
export function nativeKernels(host: KernelHost, blas: Blas, wasm: NativeKernels, from = NATIVE_FROM, dnnl?: Dnnl): NativeKernels {
  const viaBlas = blasKernels(host, blas, wasm, from);
  return { ...viaBlas, ...(dnnl ? dnnlKernels(host, dnnl, viaBlas, wasm, from) : {}) };
}

/** Convolutions as oneDNN's direct kernels (dnnl.ts), on the backend's memory; where dnnl.ts declines
 * (no oneDNN kernel, or one that measured slower than im2col + BLAS), on the BLAS. Max-pooling of a
 * tensor a convolution left in oneDNN's blocked layout (layouts.ts), in it. A large linear layer's forward pass, as a 1×1 convolution. */
function dnnlKernels(
  host: KernelHost,
  dnnl: Dnnl,
  viaBlas: NativeKernels,
  wasm: NativeKernels,
  from: { linearWeights: number },
): NativeKernels {
  const memory = () => host.at(0);
  const onDnnl = (p: LinearParams) => linearRoute('forward', p, { dnnl: true, from }) === 'dnnl';
  return {
    maxpool2d_forward: (g, b) => {
      const block = b.x.layout?.block;
      if (!block) return wasm.maxpool2d_forward!(g, b);
      const geometry = host.convGeometry({ ...g, inChannels: g.channels, outChannels: g.channels, groups: 1 });
      const [x, y] = [b.x.offset, b.y.offset];
      host.run(host.perThread((g.batch * g.channels) / block).map((range) => task.maxpool2dBlocked({ geometry, x, y, range, block })));
      b.y.layout = dnnl.blockedLayout([g.batch, g.channels, g.outHeight, g.outWidth], block);
    },
    linear_forward: (p, b) => (onDnnl(p) && dnnl.linear(p, b, memory())) || viaBlas.linear_forward!(p, b),
    conv2d_forward: (g, b) =>
      stripConvolution(host, dnnl, g, b) || dnnl.convolution('forward', g, b, memory()) || viaBlas.conv2d_forward!(g, b),
    conv2d_backward_data: (g, b) => dnnl.convolution('backward_data', g, b, memory()) || viaBlas.conv2d_backward_data!(g, b),
    conv2d_backward_filter: (g, b) => dnnl.convolution('backward_weights', g, b, memory()) || viaBlas.conv2d_backward_filter!(g, b),
  };
}

/** Convolutions as im2col + GEMM, and the linear layers, in the BLAS. */
function blasKernels(host: KernelHost, blas: Blas, wasm: NativeKernels, from: { linearWeights: number }): NativeKernels {
  /** C (M×N) = op(A)·op(B) + beta·C on the backend's memory; a, b, c are byte offsets. */
  const gemm = (
    o: { M: number; N: number; K: number; a: number; lda: number; b: number; ldb: number; c: number; ldc: number } & GemmFlags,
  ) =>
    blas.sgemm(
      o.transA ?? false,
      o.transB ?? false,
      o.M,
      o.N,
      o.K,
      o.alpha ?? 1,
      host.at(o.a),
      o.lda,
      host.at(o.b),
      o.ldb,
      o.beta ?? 0,
      host.at(o.c),
      o.ldc,
    );

  /** Images per chunk when each takes `perImage` floats of workspace. */
  const chunkOf = (g: Conv2dGeometry, perImage: number) => Math.max(1, Math.min(g.batch, Math.floor(WORKSPACE_FLOATS / perImage)));

  const shape = (g: Conv2dGeometry) => {
    const ohw = g.outHeight * g.outWidth,
      kk = g.kernelH * g.kernelW;
    const cg = g.inChannels / g.groups,
      kg = g.outChannels / g.groups;
    return { ohw, kk, cg, kg, taps: cg * kk };
  };

  /** Row ranges of whole channels (col2im may only split between channels). */
  const channelRows = (cg: number, kk: number) => host.perThread(cg).map(([c0, c1]) => [c0 * kk, c1 * kk] as const);

  /** Calls `body` for each chunk of images and each group: the chunk's `images`, its column count
   * `width`, the workspace's im2col columns `col` (taps × width) and a `panel` of K/G × width after
   * them, and the group's weights `weight`. */
  const forEachChunk = (
    g: Conv2dGeometry,
    weights: number,
    body: (c: {
      geometry: number;
      group: number;
      images: readonly [number, number];
      width: number;
      col: number;
      panel: number;
      weight: number;
    }) => void,
  ) => {
    const { ohw, kg, taps } = shape(g);
    const perChunk = chunkOf(g, (taps + kg) * ohw);
    const col = host.workspace(perChunk * (taps + kg) * ohw);
    const geometry = host.convGeometry(g);
    for (let n0 = 0; n0 < g.batch; n0 += perChunk) {
      const images = [n0, Math.min(g.batch, n0 + perChunk)] as const,
        width = (images[1] - n0) * ohw;
      for (let group = 0; group < g.groups; group++) {
        body({ geometry, group, images, width, col, panel: col + 4 * taps * width, weight: weights + 4 * group * kg * taps });
      }
    }
  };

  return {
    conv2d_forward: (g, b) => {
      const { kg, taps } = shape(g);
      const [x, y, bias] = [b.x.offset, b.y.offset, b.bias?.offset ?? 0];
      forEachChunk(g, b.weight.offset, ({ geometry, group, images, width, col, panel: out, weight }) => {
        host.run(host.perThread(taps).map((range) => task.convColumns({ geometry, x, group, images, range, col, toCol: true })));
        gemm({ M: kg, N: width, K: taps, a: weight, lda: taps, b: col, ldb: width, c: out, ldc: width });
        host.run(host.perThread(kg).map((range) => task.spreadColumns({ geometry, out, y, bias, group, images, range })));
      });
    },
    conv2d_backward_data: (g, b) => {
      const { kk, cg, kg, taps } = shape(g);
      const [dy, dx] = [b.dy.offset, b.dx.offset];
      forEachChunk(g, b.weight.offset, ({ geometry, group, images, width, col, panel: grads, weight }) => {
        host.run(host.perThread(kg).map((range) => task.gatherColumns({ geometry, dy, grads, group, images, range })));
        // dcol (taps × width) = W_gᵀ · dy_g
        gemm({ M: taps, N: width, K: kg, a: weight, lda: taps, transA: true, b: grads, ldb: width, c: col, ldc: width });
        host.run(channelRows(cg, kk).map((range) => task.convColumns({ geometry, x: dx, group, images, range, col, toCol: false })));
      });
    },
    conv2d_backward_filter: (g, b) => {
      const { ohw, kg, taps } = shape(g);
      const [x, dy] = [b.x.offset, b.dy.offset];
      forEachChunk(g, b.dweight.offset, ({ geometry, group, images, width, col, panel: grads, weight: dweight }) => {
        host.run([
          ...host.perThread(taps).map((range) => task.convColumns({ geometry, x, group, images, range, col, toCol: true })),
          ...host.perThread(kg).map((range) => task.gatherColumns({ geometry, dy, grads, group, images, range })),
        ]);
        // dW_g (kg × taps) (+)= dy_g · colᵀ
        const beta = images[0] === 0 ? 0 : 1;
        gemm({ M: kg, N: taps, K: width, a: grads, lda: width, b: col, ldb: width, transB: true, beta, c: dweight, ldc: taps });
      });
      const dbias = b.dbias?.offset;
      if (dbias !== undefined) {
        const planes = { dy: b.dy.offset, dbias, batch: g.batch, channels: g.outChannels, spatial: ohw };
        host.run(host.perThread(g.outChannels).map((range) => task.biasBackward({ ...planes, range })));
      }
    },
    linear_forward: (p, b) => {
      if (linearRoute('forward', p, { dnnl: false, from }) === 'wasm') return wasm.linear_forward!(p, b);
      const y = host.at(b.y.offset);
      if (b.bias) {
        const bias = host.at(b.bias.offset).subarray(0, p.outFeatures);
        for (let n = 0; n < p.batch; n++) y.set(bias, n * p.outFeatures);
      }
      // y = x·Wᵀ (+ y, holding the bias)
      const [M, N, K] = [p.batch, p.outFeatures, p.inFeatures];
      gemm({ M, N, K, a: b.x.offset, lda: K, b: b.weight.offset, ldb: K, transB: true, beta: b.bias ? 1 : 0, c: b.y.offset, ldc: N });
    },
    linear_backward_data: (p, b) => {
      if (linearRoute('backward_data', p, { dnnl: false, from }) === 'wasm') return wasm.linear_backward_data!(p, b);
      // dx = dy·W
      const [M, N, K] = [p.batch, p.inFeatures, p.outFeatures];
      gemm({ M, N, K, a: b.dy.offset, lda: K, b: b.weight.offset, ldb: N, c: b.dx.offset, ldc: N });
    },
    linear_backward_params: (p, b) => {
      if (linearRoute('backward_params', p, { dnnl: false, from }) === 'wasm') return wasm.linear_backward_params!(p, b);
      // dW = dyᵀ·x
      const [M, N, K] = [p.outFeatures, p.inFeatures, p.batch];
      gemm({ M, N, K, a: b.dy.offset, lda: M, transA: true, b: b.x.offset, ldb: N, c: b.dweight.offset, ldc: N });
      const dbias = b.dbias?.offset;
      if (dbias !== undefined) {
        const rows = { dy: b.dy.offset, dbias, batch: p.batch, channels: p.outFeatures, spatial: 1 };
        host.run(host.perThread(p.outFeatures).map((range) => task.biasBackward({ ...rows, range })));
      }
    },
    gemm: (p, b) =>
      gemm({ ...p, a: b.a.offset, lda: p.transA ? p.M : p.K, b: b.b.offset, ldb: p.transB ? p.K : p.N, c: b.c.offset, ldc: p.N }),
  };
}
