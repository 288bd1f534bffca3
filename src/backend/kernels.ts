/**
 * Every kernel a backend implements: its name, its parameters and the buffers it reads and writes.
 * Shapes are NCHW, float, contiguous. "Backward" kernels overwrite their outputs (no accumulation)
 * except `accumulate`, which the network uses where a blob feeds several layers.
 */
export type FloatArray = Float32Array | Float64Array;

/** An opaque handle to `length` floats that live on one backend (backend.ts's `Backend`). */
export interface DeviceBuffer {
  readonly length: number;
}

type B = DeviceBuffer;

/** A window sliding over [N, C, H, W] maps: shared by convolution and pooling. */
export interface WindowGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  /** Rows/columns of padding before the input; the padding after it is implied by the output size. */
  padTop: number;
  padLeft: number;
  dilationH: number;
  dilationW: number;
}

export interface Conv2dGeometry extends WindowGeometry {
  inChannels: number;
  outChannels: number;
  groups: number;
}

export interface Pool2dGeometry extends WindowGeometry {
  channels: number;
}

export interface AdaptivePoolGeometry {
  batch: number;
  channels: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
}

export interface LrnParams {
  batch: number;
  channels: number;
  /** Height × width. */
  spatial: number;
  /** Odd window across channels: channel c sums the squares of c − (size−1)/2 … c + (size−1)/2. */
  size: number;
  /** The α that multiplies the window sum (already divided by `size` under the α/n convention). */
  alpha: number;
  beta: number;
  k: number;
}

export interface LinearParams {
  batch: number;
  inFeatures: number;
  outFeatures: number;
}

export type ActivationFn = 'relu' | 'tanh' | 'sigmoid';

/** A tensor viewed as [outer, axis, inner] with a softmax taken along `axis`. */
export interface SoftmaxParams {
  outer: number;
  axis: number;
  inner: number;
  /** log-softmax instead of softmax. */
  log: boolean;
}

/** Copies `count` rows of a [outer, srcAxis, inner] tensor starting at `srcOffset` into
 * a [outer, dstAxis, inner] tensor starting at `dstOffset` (concat, split). */
export interface SlabCopyParams {
  outer: number;
  inner: number;
  count: number;
  srcAxis: number;
  srcOffset: number;
  dstAxis: number;
  dstOffset: number;
}

export interface KernelTable {
  conv2d_forward: { params: Conv2dGeometry; buffers: { x: B; weight: B; bias?: B; y: B } };
  conv2d_backward_data: { params: Conv2dGeometry; buffers: { dy: B; weight: B; dx: B } };
  conv2d_backward_filter: { params: Conv2dGeometry; buffers: { x: B; dy: B; dweight: B; dbias?: B } };

  maxpool2d_forward: { params: Pool2dGeometry; buffers: { x: B; y: B } };
  /** Routes each output gradient to its window's maximum by PyTorch's rule: the first tap, then
   * any tap that is greater or NaN. */
  maxpool2d_backward: { params: Pool2dGeometry; buffers: { x: B; dy: B; dx: B } };
  adaptive_avgpool2d_forward: { params: AdaptivePoolGeometry; buffers: { x: B; y: B } };
  adaptive_avgpool2d_backward: { params: AdaptivePoolGeometry; buffers: { dy: B; dx: B } };

  /** y = x / scale^β with scale = k + α·Σ x² over the channel window; scale is kept for backward. */
  lrn_forward: { params: LrnParams; buffers: { x: B; y: B; scale: B } };
  lrn_backward: { params: LrnParams; buffers: { x: B; y: B; scale: B; dy: B; dx: B } };

  activation_forward: { params: { fn: ActivationFn; length: number }; buffers: { x: B; y: B } };
  /** Written in terms of the output y, so the input need not be kept. */
  activation_backward: { params: { fn: ActivationFn; length: number }; buffers: { y: B; dy: B; dx: B } };

  /** c = alpha · op(a) · op(b) + beta · c, op(a) M×K, op(b) K×N, row-major. */
  gemm: {
    params: { M: number; N: number; K: number; transA: boolean; transB: boolean; alpha: number; beta: number };
    buffers: { a: B; b: B; c: B };
  };
  /** y = x · weightᵀ + bias, weight [out, in] as PyTorch. */
  linear_forward: { params: LinearParams; buffers: { x: B; weight: B; bias?: B; y: B } };
  linear_backward_data: { params: LinearParams; buffers: { dy: B; weight: B; dx: B } };
  linear_backward_params: { params: LinearParams; buffers: { x: B; dy: B; dweight: B; dbias?: B } };

  /** Inverted dropout: mask[i] = 0 with probability p, else 1/(1−p); y = x · mask. Element i is
   * dropped when uint32ToUnit(philox4x32(g/4, 0, 0, 0, seed, stream)[g%4]) < p, g = offset + i: a
   * slice of a larger batch (one rank's share of a data-parallel step) draws that batch's masks. */
  dropout_forward: {
    params: { length: number; p: number; seed: number; stream: number; offset: number };
    buffers: { x: B; y: B; mask: B };
  };
  multiply: { params: { length: number }; buffers: { a: B; b: B; y: B } };

  softmax_forward: { params: SoftmaxParams; buffers: { x: B; y: B } };
  softmax_backward: { params: SoftmaxParams; buffers: { y: B; dy: B; dx: B } };
  /** Mean over the batch of −log softmax(logits)[label]; labels hold class indices as floats. */
  softmax_cross_entropy_forward: { params: { batch: number; classes: number }; buffers: { logits: B; labels: B; probs: B; loss: B } };
  /** dlogits = (probs − onehot(labels)) · dloss / batch. */
  softmax_cross_entropy_backward: { params: { batch: number; classes: number }; buffers: { probs: B; labels: B; dloss: B; dlogits: B } };

  /** The paper's update: velocity ← momentum·velocity − weightDecay·lr·weight − lr·grad;
   * weight ← weight + velocity. */
  sgd_update: {
    params: { length: number; lr: number; momentum: number; weightDecay: number };
    buffers: { weight: B; grad: B; velocity: B };
  };

  /** Counter-based random values: element i is derived from philox4x32(⌊i/4⌋, 0, 0, 0, seed,
   * stream) word i mod 4, so every backend draws the same values. Uniform: a + (b − a)·u.
   * Normal (mean a, deviation b): Box-Muller on the word pairs (0, 1) and (2, 3) of a block. */
  random_fill: {
    params: { length: number; seed: number; stream: number; distribution: 'uniform' | 'normal'; a: number; b: number };
    buffers: { y: B };
  };

  copy: { params: { length: number }; buffers: { x: B; y: B } };
  copy_slab: { params: SlabCopyParams; buffers: { src: B; dst: B } };
  /** y += x */
  accumulate: { params: { length: number }; buffers: { x: B; y: B } };
  fill: { params: { length: number; value: number }; buffers: { y: B } };
}

export type KernelName = keyof KernelTable;

/** The buffers each kernel writes (the others it only reads): what a backend must treat as changed
 * after a run, e.g. to keep a copy of a weight in another layout only while the weight is unchanged. */
export const KERNEL_WRITES: { readonly [K in KernelName]: readonly (keyof KernelTable[K]['buffers'])[] } = {
  conv2d_forward: ['y'],
  conv2d_backward_data: ['dx'],
  conv2d_backward_filter: ['dweight', 'dbias'],
  maxpool2d_forward: ['y'],
  maxpool2d_backward: ['dx'],
  adaptive_avgpool2d_forward: ['y'],
  adaptive_avgpool2d_backward: ['dx'],
  lrn_forward: ['y', 'scale'],
  lrn_backward: ['dx'],
  activation_forward: ['y'],
  activation_backward: ['dx'],
  gemm: ['c'],
  linear_forward: ['y'],
  linear_backward_data: ['dx'],
  linear_backward_params: ['dweight', 'dbias'],
  dropout_forward: ['y', 'mask'],
  multiply: ['y'],
  softmax_forward: ['y'],
  softmax_backward: ['dx'],
  softmax_cross_entropy_forward: ['probs', 'loss'],
  softmax_cross_entropy_backward: ['dlogits'],
  sgd_update: ['weight', 'velocity'],
  random_fill: ['y'],
  copy: ['y'],
  copy_slab: ['dst'],
  accumulate: ['y'],
  fill: ['y'],
};
