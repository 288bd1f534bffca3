/**
 * One typed builder per wasm export: named arguments in, the positional task a thread runs out.
 * Each builder writes its export's argument order (the AssemblyScript signature in assembly/*.ts)
 * once; the backend only ever names arguments. Pointers are byte offsets into the wasm memory;
 * `range` is the [start, end) slice of the work one task does.
 */
import type { AdaptivePoolGeometry } from '../kernels.js';
import type { Task } from './threads.js';

type Range = readonly [number, number];

/** C(M×N) = alpha·A·B + beta·C; A(i, k) at a + 4·(i·rowStrideA + k·colStrideA), likewise B; C has row stride ldc. */
export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  alpha: number;
  a: number;
  rowStrideA: number;
  colStrideA: number;
  b: number;
  rowStrideB: number;
  colStrideB: number;
  beta: number;
  c: number;
  ldc: number;
}

export const task = {
  gemm: (g: GemmArgs): Task => ({
    fn: 'gemm',
    args: [g.M, g.N, g.K, g.alpha, g.a, g.rowStrideA, g.colStrideA, g.b, g.rowStrideB, g.colStrideB, g.beta, g.c, g.ldc],
    scratch: 'gemm',
  }),
  /** Output columns (image, pixel) in `range`, im2col panels of `chunk` columns. */
  conv2dForward: (a: { geometry: number; x: number; weight: number; bias: number; y: number; range: Range; chunk: number }): Task => ({
    fn: 'conv2dForward',
    args: [a.geometry, a.x, a.weight, a.bias, a.y, ...a.range, a.chunk],
    scratch: 'col+gemm',
  }),
  /** Input channels in `range`. */
  conv2dBackwardData: (a: { geometry: number; dy: number; weight: number; dx: number; range: Range; chunk: number }): Task => ({
    fn: 'conv2dBackwardData',
    args: [a.geometry, a.dy, a.weight, a.dx, ...a.range, a.chunk],
    scratch: 'col+gemm',
  }),
  /** Rows (taps) of the weight gradient in `range`. */
  conv2dBackwardFilter: (a: { geometry: number; x: number; dy: number; dweight: number; range: Range; chunk: number }): Task => ({
    fn: 'conv2dBackwardFilter',
    args: [a.geometry, a.x, a.dy, a.dweight, ...a.range, a.chunk],
    scratch: 'col+gemm',
  }),
  /** Channels in `range`: dbias[k] = Σ over images and `spatial` positions of dy. */
  biasBackward: (a: { dy: number; dbias: number; batch: number; channels: number; spatial: number; range: Range }): Task => ({
    fn: 'biasBackward',
    args: [a.dy, a.dbias, a.batch, a.channels, a.spatial, ...a.range],
  }),
  /** Planes (image × channel) in `range`. */
  maxpool2dForward: (a: { geometry: number; x: number; y: number; range: Range }): Task => ({
    fn: 'maxpool2dForward',
    args: [a.geometry, a.x, a.y, ...a.range],
    scratch: 'gemm',
  }),
  /** Blocks of `block` channels (image × channel block) in `range`, of a channel-blocked tensor. */
  maxpool2dBlocked: (a: { geometry: number; x: number; y: number; range: Range; block: number }): Task => ({
    fn: 'maxpool2dBlocked',
    args: [a.geometry, a.x, a.y, ...a.range, a.block],
    scratch: 'gemm',
  }),
  maxpool2dBackward: (a: { geometry: number; x: number; dy: number; dx: number; range: Range }): Task => ({
    fn: 'maxpool2dBackward',
    args: [a.geometry, a.x, a.dy, a.dx, ...a.range],
    scratch: 'gemm',
  }),
  /** Planes in `range`: forward from x (`src`) to y (`dst`), or backward from dy to dx. */
  adaptiveAvgpool2d: (a: { src: number; dst: number; range: Range; backward: boolean } & AdaptivePoolGeometry): Task => ({
    fn: 'adaptiveAvgpool2d',
    args: [a.src, a.dst, a.inHeight, a.inWidth, a.outHeight, a.outWidth, ...a.range, a.backward ? 1 : 0],
  }),
  /** Images in `range`. */
  lrnForward: (a: { x: number; y: number; scale: number } & LrnShape & { k: number; range: Range }): Task => ({
    fn: 'lrnForward',
    args: [a.x, a.y, a.scale, a.channels, a.spatial, a.size, a.alpha, a.beta, a.k, ...a.range],
  }),
  lrnBackward: (a: { x: number; y: number; scale: number; dy: number; dx: number } & LrnShape & { range: Range }): Task => ({
    fn: 'lrnBackward',
    args: [a.x, a.y, a.scale, a.dy, a.dx, a.channels, a.spatial, a.size, a.alpha, a.beta, ...a.range],
  }),
  /** Elements in `range`; `fn` is an ACTIVATIONS code. */
  activationForward: (a: { fn: number; x: number; y: number; range: Range }): Task => ({
    fn: 'activationForward',
    args: [a.fn, a.x, a.y, ...a.range],
  }),
  activationBackward: (a: { fn: number; y: number; dy: number; dx: number; range: Range }): Task => ({
    fn: 'activationBackward',
    args: [a.fn, a.y, a.dy, a.dx, ...a.range],
  }),
  dropoutForward: (a: {
    x: number;
    y: number;
    mask: number;
    p: number;
    seed: number;
    stream: number;
    offset: number;
    range: Range;
  }): Task => ({
    fn: 'dropoutForward',
    args: [a.x, a.y, a.mask, a.p, a.seed, a.stream, a.offset, ...a.range],
  }),
  multiply: (a: { a: number; b: number; y: number; range: Range }): Task => ({ fn: 'multiply', args: [a.a, a.b, a.y, ...a.range] }),
  accumulate: (a: { x: number; y: number; range: Range }): Task => ({ fn: 'accumulate', args: [a.x, a.y, ...a.range] }),
  sgdUpdate: (a: {
    weight: number;
    grad: number;
    velocity: number;
    lr: number;
    momentum: number;
    weightDecay: number;
    range: Range;
  }): Task => ({
    fn: 'sgdUpdate',
    args: [a.weight, a.grad, a.velocity, a.lr, a.momentum, a.weightDecay, ...a.range],
  }),
  /** Output features in `range`, weights read row by row (small batches). */
  linearRows: (a: {
    x: number;
    weight: number;
    bias: number;
    y: number;
    batch: number;
    inFeatures: number;
    outFeatures: number;
    range: Range;
  }): Task => ({
    fn: 'linearRows',
    args: [a.x, a.weight, a.bias, a.y, a.batch, a.inFeatures, a.outFeatures, ...a.range],
  }),
  /** The native route's im2col (`toCol`) or col2im of images `images` and taps `range` of one group. */
  convColumns: (a: { geometry: number; x: number; group: number; images: Range; range: Range; col: number; toCol: boolean }): Task => ({
    fn: 'convColumns',
    args: [a.geometry, a.x, a.group, ...a.images, ...a.range, a.col, a.toCol ? 1 : 0],
    scratch: 'gemm',
  }),
  /** A GEMM's output panel of `images` side by side back to NCHW, for output channels `range` of the group. */
  spreadColumns: (a: { geometry: number; out: number; y: number; bias: number; group: number; images: Range; range: Range }): Task => ({
    fn: 'spreadColumns',
    args: [a.geometry, a.out, a.y, a.bias, a.group, ...a.images, ...a.range],
  }),
  gatherColumns: (a: { geometry: number; dy: number; grads: number; group: number; images: Range; range: Range }): Task => ({
    fn: 'gatherColumns',
    args: [a.geometry, a.dy, a.grads, a.group, ...a.images, ...a.range],
  }),
  /** Rows in `range` of `rows` per image (assembly/elementwise.ts). */
  copyRows: (a: {
    src: number;
    dst: number;
    rows: number;
    images: number;
    srcImage: number;
    srcRow: number;
    dstImage: number;
    dstRow: number;
    bytes: number;
    zeros: number;
    range: Range;
  }): Task => ({
    fn: 'copyRows',
    args: [a.src, a.dst, a.rows, a.images, a.srcImage, a.srcRow, a.dstImage, a.dstRow, a.bytes, a.zeros, ...a.range],
  }),
  randomFill: (a: { y: number; normal: boolean; a: number; b: number; seed: number; stream: number; range: Range }): Task => ({
    fn: 'randomFill',
    args: [a.y, a.normal ? 1 : 0, a.a, a.b, a.seed, a.stream, ...a.range],
  }),
};

interface LrnShape {
  channels: number;
  spatial: number;
  size: number;
  alpha: number;
  beta: number;
}
