/**
 * The kernel table in WGSL: for each kernel, the dispatches that run it. Matrix products are in
 * gemm.ts; everything else is one thread per output element (gathering, never scattering, so no
 * atomics and the same summation order as the reference backend) or one workgroup per reduction.
 */
import type { ActivationFn, AdaptivePoolGeometry, KernelName, KernelTable, Pool2dGeometry } from '../kernels.js';
import * as G from './gemm.js';
import { type Dispatch, fieldsOf, perElement, roles, shader, THREADS, WGSL_COMMON, WINDOW_FIELDS, windowUniforms } from './shader.js';

type Planner<K extends KernelName> = (params: KernelTable[K]['params'], present: ReadonlySet<string>) => Dispatch[];

const POOL_FIELDS = [...WINDOW_FIELDS, ['planes', 'i32'] as const];

function poolUniforms(g: Pool2dGeometry, length: number): Record<string, number> & { length: number } {
  return { ...windowUniforms(g), planes: g.batch * g.channels, length };
}

/** PyTorch's rule, as the reference: the first tap, then any tap that is greater or NaN. */
const WINDOW_ARGMAX = `${WGSL_COMMON}
fn windowArgmax(plane: i32, oy: i32, ox: i32) -> i32 {
  var best = -1;
  var bestValue = negativeInfinity();
  for (var ky = 0; ky < p.kH; ky++) {
    let iy = oy * p.sH - p.padT + ky * p.dH;
    if (iy < 0 || iy >= p.inH) { continue; }
    for (var kx = 0; kx < p.kW; kx++) {
      let ix = ox * p.sW - p.padL + kx * p.dW;
      if (ix < 0 || ix >= p.inW) { continue; }
      let index = (plane * p.inH + iy) * p.inW + ix;
      let value = x[index];
      if (best < 0) { best = index; }
      if (value > bestValue || isNan(value)) { best = index; bestValue = value; }
    }
  }
  return best;
}`;

const maxpoolForward = perElement(
  'maxpool2d_forward',
  POOL_FIELDS,
  roles(['x'], ['y']),
  `  let o = i32(i);
  let at = windowArgmax(o / (p.outH * p.outW), (o / p.outW) % p.outH, o % p.outW);
  if (at < 0) { y[i] = negativeInfinity(); } else { y[i] = x[at]; }`,
  WINDOW_ARGMAX,
);

/** Each input element sums the gradients of the windows whose maximum it is, in the order the
 * reference visits them (output rows, then columns, ascending). */
const maxpoolBackward = perElement(
  'maxpool2d_backward',
  POOL_FIELDS,
  roles(['x', 'dy'], ['dx']),
  `  let e = i32(i);
  let plane = e / (p.inH * p.inW);
  let iy = (e / p.inW) % p.inH;
  let ix = e % p.inW;
  var sum = 0.0;
  for (var ky = p.kH - 1; ky >= 0; ky--) {
    let ty = iy + p.padT - ky * p.dH;
    if (ty < 0 || ty % p.sH != 0 || ty / p.sH >= p.outH) { continue; }
    for (var kx = p.kW - 1; kx >= 0; kx--) {
      let tx = ix + p.padL - kx * p.dW;
      if (tx < 0 || tx % p.sW != 0 || tx / p.sW >= p.outW) { continue; }
      if (windowArgmax(plane, ty / p.sH, tx / p.sW) == e) {
        sum += dy[(plane * p.outH + ty / p.sH) * p.outW + tx / p.sW];
      }
    }
  }
  dx[i] = sum;`,
  WINDOW_ARGMAX,
);

const ADAPTIVE_FIELDS = fieldsOf(['inH', 'inW', 'outH', 'outW'], 'i32');
/** PyTorch's adaptive bins: output cell i covers [floor(i·in/out), ceil((i+1)·in/out)). */
const BINS = `
fn binStart(i: i32, inSize: i32, outSize: i32) -> i32 { return (i * inSize) / outSize; }
fn binEnd(i: i32, inSize: i32, outSize: i32) -> i32 { return ((i + 1) * inSize + outSize - 1) / outSize; }`;

const adaptiveForward = perElement(
  'adaptive_avgpool2d_forward',
  ADAPTIVE_FIELDS,
  roles(['x'], ['y']),
  `  let o = i32(i);
  let plane = o / (p.outH * p.outW);
  let oy = (o / p.outW) % p.outH;
  let ox = o % p.outW;
  let y0 = binStart(oy, p.inH, p.outH);
  let y1 = binEnd(oy, p.inH, p.outH);
  let x0 = binStart(ox, p.inW, p.outW);
  let x1 = binEnd(ox, p.inW, p.outW);
  let count = f32((y1 - y0) * (x1 - x0));
  var sum = 0.0;
  for (var iy = y0; iy < y1; iy++) {
    for (var ix = x0; ix < x1; ix++) { sum += x[(plane * p.inH + iy) * p.inW + ix] / count; }
  }
  y[i] = sum;`,
  BINS,
);

const adaptiveBackward = perElement(
  'adaptive_avgpool2d_backward',
  ADAPTIVE_FIELDS,
  roles(['dy'], ['dx']),
  `  let e = i32(i);
  let plane = e / (p.inH * p.inW);
  let iy = (e / p.inW) % p.inH;
  let ix = e % p.inW;
  var sum = 0.0;
  for (var oy = 0; oy < p.outH; oy++) {
    let y0 = binStart(oy, p.inH, p.outH);
    let y1 = binEnd(oy, p.inH, p.outH);
    if (iy < y0 || iy >= y1) { continue; }
    for (var ox = 0; ox < p.outW; ox++) {
      let x0 = binStart(ox, p.inW, p.outW);
      let x1 = binEnd(ox, p.inW, p.outW);
      if (ix < x0 || ix >= x1) { continue; }
      sum += dy[(plane * p.outH + oy) * p.outW + ox] / f32((y1 - y0) * (x1 - x0));
    }
  }
  dx[i] = sum;`,
  BINS,
);

const LRN_FIELDS = [
  ['channels', 'u32'],
  ['spatial', 'u32'],
  ['half', 'u32'],
  ['alpha', 'f32'],
  ['beta', 'f32'],
  ['k', 'f32'],
] as const;
/** The channel window of element i, clipped to the tensor: first index, last index, step. */
const LRN_WINDOW = `
fn windowOf(i: u32) -> vec2<u32> {
  let c = (i / p.spatial) % p.channels;
  let base = i - c * p.spatial;
  let lo = select(0u, c - p.half, c >= p.half);
  let hi = min(p.channels - 1u, c + p.half);
  return vec2<u32>(base + lo * p.spatial, base + hi * p.spatial);
}`;

const lrnForward = perElement(
  'lrn_forward',
  LRN_FIELDS,
  roles(['x'], ['y', 'scale']),
  `  let w = windowOf(i);
  var sum = 0.0;
  for (var j = w.x; j <= w.y; j += p.spatial) { sum += x[j] * x[j]; }
  let s = p.k + p.alpha * sum;
  scale[i] = s;
  y[i] = x[i] * pow(s, -p.beta);`,
  LRN_WINDOW,
);

const lrnBackward = perElement(
  'lrn_backward',
  LRN_FIELDS,
  roles(['x', 'y', 'scale', 'dy'], ['dx']),
  `  let w = windowOf(i);
  var sum = 0.0;
  for (var j = w.x; j <= w.y; j += p.spatial) { sum += dy[j] * y[j] / scale[j]; }
  dx[i] = dy[i] * pow(scale[i], -p.beta) - 2.0 * p.alpha * p.beta * x[i] * sum;`,
  LRN_WINDOW,
);

const ACTIVATIONS: Record<ActivationFn, { forward: string; backward: string }> = {
  // NaN stays NaN, as PyTorch's (isNan tests the bits: a compiler may assume v <= 0.0 holds for it).
  relu: { forward: 'select(v, 0.0, v <= 0.0 && !isNan(v))', backward: 'select(0.0, g, v > 0.0)' },
  tanh: { forward: 'tanh(v)', backward: 'g * (1.0 - v * v)' },
  sigmoid: { forward: '1.0 / (1.0 + exp(-v))', backward: 'g * v * (1.0 - v)' },
};

/** One planner per function, made once. */
const perActivation = <T>(make: (fn: ActivationFn) => T) =>
  Object.fromEntries(Object.keys(ACTIVATIONS).map((fn) => [fn, make(fn as ActivationFn)])) as Record<ActivationFn, T>;
const activationForward = perActivation((fn) =>
  perElement(`activation_forward:${fn}`, [], roles(['x'], ['y']), `  let v = x[i];\n  y[i] = ${ACTIVATIONS[fn].forward};`, WGSL_COMMON),
);
const activationBackward = perActivation((fn) =>
  perElement(
    `activation_backward:${fn}`,
    [],
    roles(['y', 'dy'], ['dx']),
    `  let v = y[i];\n  let g = dy[i];\n  dx[i] = ${ACTIVATIONS[fn].backward};`,
  ),
);

/** Philox4x32-10 as random.ts (WGSL has no 64-bit product: the high word from 16-bit halves). */
const PHILOX = `
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let cross = ((a0 * b0) >> 16u) + ((a1 * b0) & 0xffffu) + a0 * b1;
  return a1 * b1 + ((a1 * b0) >> 16u) + (cross >> 16u);
}
fn philox(counter: u32, seed: u32, stream: u32) -> vec4<u32> {
  var c = vec4<u32>(counter, 0u, 0u, 0u);
  var k = vec2<u32>(seed, stream);
  for (var round = 0; round < 10; round++) {
    let hi0 = mulhi(0xd2511f53u, c.x); let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi(0xcd9e8d57u, c.z); let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}
fn unit(word: u32) -> f32 { return f32(word >> 8u) * (1.0 / 16777216.0); }`;

/** Element i is dropped when its 24-bit draw is below p·2^24, i.e. when uint32ToUnit(word) < p. */
const dropoutForward = perElement(
  'dropout_forward',
  [
    ['seed', 'u32'],
    ['stream', 'u32'],
    ['offset', 'u32'],
    ['threshold', 'u32'],
    ['keepScale', 'f32'],
  ],
  roles(['x'], ['y', 'mask']),
  `  let g = p.offset + i;
  let word = philox(g / 4u, p.seed, p.stream)[g % 4u];
  let m = select(p.keepScale, 0.0, (word >> 8u) < p.threshold);
  mask[i] = m;
  y[i] = x[i] * m;`,
  PHILOX,
);

const randomFill = perElement(
  'random_fill',
  [
    ['seed', 'u32'],
    ['stream', 'u32'],
    ['normal', 'u32'],
    ['a', 'f32'],
    ['b', 'f32'],
  ],
  roles([], ['y']),
  `  let block = philox(i / 4u, p.seed, p.stream);
  if (p.normal == 0u) {
    y[i] = p.a + (p.b - p.a) * unit(block[i % 4u]);
    return;
  }
  let pair = select(2u, 0u, i % 4u < 2u);
  let radius = sqrt(-2.0 * log(1.0 - unit(block[pair])));
  let angle = 6.283185307179586 * unit(block[pair + 1u]);
  y[i] = p.a + p.b * radius * select(sin(angle), cos(angle), i % 2u == 0u);`,
  PHILOX,
);

const multiply = perElement('multiply', [], roles(['a', 'b'], ['y']), '  y[i] = a[i] * b[i];');
const copy = perElement('copy', [], roles(['x'], ['y']), '  y[i] = x[i];');
const accumulate = perElement('accumulate', [], roles(['x'], ['y']), '  y[i] = y[i] + x[i];');
const fill = perElement('fill', [['value', 'f32']], roles([], ['y']), '  y[i] = p.value;');
const sgdUpdate = perElement(
  'sgd_update',
  [
    ['lr', 'f32'],
    ['momentum', 'f32'],
    ['weightDecay', 'f32'],
  ],
  roles(['grad'], ['weight', 'velocity']),
  `  let v = p.momentum * velocity[i] - p.weightDecay * p.lr * weight[i] - p.lr * grad[i];
  velocity[i] = v;
  weight[i] = weight[i] + v;`,
);

/** Thread i copies element i of the slab: [outer, count, inner] of src into dst. */
const copySlab = perElement(
  'copy_slab',
  fieldsOf(['inner', 'count', 'srcAxis', 'srcOffset', 'dstAxis', 'dstOffset'], 'u32'),
  roles(['src'], ['dst']),
  `  let rows = p.count * p.inner;
  let o = i / rows;
  let r = i % rows;
  dst[(o * p.dstAxis + p.dstOffset) * p.inner + r] = src[(o * p.srcAxis + p.srcOffset) * p.inner + r];`,
);

const SOFTMAX_FIELDS = [
  ['axis', 'u32'],
  ['inner', 'u32'],
  ['log', 'u32'],
] as const;
/** log Σ exp over one row (start, stride, count) of `values`, the maximum subtracted first. */
const logSumExp = (values: string) => `${WGSL_COMMON}
fn logSumExp(start: u32, stride: u32, count: u32) -> f32 {
  var top = negativeInfinity();
  for (var c = 0u; c < count; c++) { top = max(top, ${values}[start + c * stride]); }
  if (top == negativeInfinity()) { return top; }
  var sum = 0.0;
  for (var c = 0u; c < count; c++) { sum += exp(${values}[start + c * stride] - top); }
  return top + log(sum);
}`;

/** One thread per row: i indexes (outer, inner). */
const softmaxForward = perElement(
  'softmax_forward',
  SOFTMAX_FIELDS,
  roles(['x'], ['y']),
  `  let start = (i / p.inner) * p.axis * p.inner + i % p.inner;
  let lse = logSumExp(start, p.inner, p.axis);
  for (var c = 0u; c < p.axis; c++) {
    let j = start + c * p.inner;
    if (p.log != 0u) { y[j] = x[j] - lse; } else { y[j] = exp(x[j] - lse); }
  }`,
  logSumExp('x'),
);

const softmaxBackward = perElement(
  'softmax_backward',
  SOFTMAX_FIELDS,
  roles(['y', 'dy'], ['dx']),
  `  let start = (i / p.inner) * p.axis * p.inner + i % p.inner;
  var sum = 0.0;
  for (var c = 0u; c < p.axis; c++) {
    let j = start + c * p.inner;
    if (p.log != 0u) { sum += dy[j]; } else { sum += dy[j] * y[j]; }
  }
  for (var c = 0u; c < p.axis; c++) {
    let j = start + c * p.inner;
    if (p.log != 0u) { dx[j] = dy[j] - exp(y[j]) * sum; } else { dx[j] = y[j] * (dy[j] - sum); }
  }`,
);

/** A label that is not a class index in [0, classes) as −1. */
const LABEL = `
fn labelAt(n: u32) -> i32 {
  let value = labels[n];
  if (!(value >= 0.0 && value < f32(p.classes)) || floor(value) != value) { return -1; }
  return i32(value);
}`;

/** One workgroup: each thread takes rows n ≡ lane (mod THREADS), then a tree sum of the row losses.
 * A label that is not a class gives a NaN loss (a GPU cannot throw; the reference does). */
function crossEntropyForward(p: { batch: number; classes: number }): Dispatch[] {
  const compiled = shader(
    'softmax_cross_entropy_forward',
    [
      ['batch', 'u32'],
      ['classes', 'u32'],
    ],
    roles(['logits', 'labels'], ['probs', 'loss']),
    () => `${logSumExp('logits')}${LABEL}
var<workgroup> partial: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lane: u32) {
  var total = 0.0;
  for (var n = lane; n < p.batch; n += ${THREADS}u) {
    let start = n * p.classes;
    let lse = logSumExp(start, 1u, p.classes);
    for (var c = 0u; c < p.classes; c++) { probs[start + c] = exp(logits[start + c] - lse); }
    let label = labelAt(n);
    if (label < 0) { total += notANumber(); } else { total += lse - logits[start + u32(label)]; }
  }
  partial[lane] = total;
  for (var width = ${THREADS / 2}u; width > 0u; width /= 2u) {
    workgroupBarrier();
    if (lane < width) { partial[lane] += partial[lane + width]; }
  }
  if (lane == 0u) { loss[0] = partial[0] / f32(p.batch); }
}`,
  );
  return [{ shader: compiled, uniforms: { batch: p.batch, classes: p.classes }, groups: [1, 1, 1] }];
}

const crossEntropyBackward = perElement(
  'softmax_cross_entropy_backward',
  [['classes', 'u32']],
  roles(['probs', 'labels', 'dloss'], ['dlogits']),
  `  let label = labelAt(i / p.classes);
  let hit = select(0.0, 1.0, u32(label) == i % p.classes);
  var scale = dloss[0] / f32(p.length / p.classes);
  if (label < 0) { scale = notANumber(); }
  dlogits[i] = (probs[i] - hit) * scale;`,
  WGSL_COMMON + LABEL,
);

/** The bias gradient: dbias[c] = Σ over (o, r) of dy[(o·channels + c)·inner + r]; one workgroup
 * per channel, a strided pass then a tree sum. */
function biasGradient(outer: number, channels: number, inner: number): Dispatch[] {
  const compiled = shader(
    'bias_gradient',
    [
      ['outer', 'u32'],
      ['channels', 'u32'],
      ['inner', 'u32'],
    ],
    roles(['dy'], ['dbias']),
    () => `
var<workgroup> partial: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = wg.x;
  var total = 0.0;
  for (var e = lane; e < p.outer * p.inner; e += ${THREADS}u) {
    total += dy[((e / p.inner) * p.channels + c) * p.inner + e % p.inner];
  }
  partial[lane] = total;
  for (var width = ${THREADS / 2}u; width > 0u; width /= 2u) {
    workgroupBarrier();
    if (lane < width) { partial[lane] += partial[lane + width]; }
  }
  if (lane == 0u) { dbias[c] = partial[0]; }
}`,
  );
  return [{ shader: compiled, uniforms: { outer, channels, inner }, groups: [channels, 1, 1] }];
}

function adaptiveUniforms(g: AdaptivePoolGeometry, length: number) {
  return { length, inH: g.inHeight, inW: g.inWidth, outH: g.outHeight, outW: g.outWidth };
}

export const planners: { [K in KernelName]: Planner<K> } = {
  conv2d_forward: (g, present) => G.convForward(g, present.has('bias')),
  conv2d_backward_data: (g) => G.convBackwardData(g),
  conv2d_backward_filter: (g, present) => [
    ...G.convBackwardWeight(g),
    ...(present.has('dbias') ? biasGradient(g.batch, g.outChannels, g.outHeight * g.outWidth) : []),
  ],
  maxpool2d_forward: (g) => maxpoolForward(poolUniforms(g, g.batch * g.channels * g.outHeight * g.outWidth)),
  maxpool2d_backward: (g) => maxpoolBackward(poolUniforms(g, g.batch * g.channels * g.inHeight * g.inWidth)),
  adaptive_avgpool2d_forward: (g) => adaptiveForward(adaptiveUniforms(g, g.batch * g.channels * g.outHeight * g.outWidth)),
  adaptive_avgpool2d_backward: (g) => adaptiveBackward(adaptiveUniforms(g, g.batch * g.channels * g.inHeight * g.inWidth)),
  lrn_forward: (p) => lrnForward(lrnUniforms(p)),
  lrn_backward: (p) => lrnBackward(lrnUniforms(p)),
  activation_forward: (p) => activationForward[p.fn]({ length: p.length }),
  activation_backward: (p) => activationBackward[p.fn]({ length: p.length }),
  gemm: (p) => G.gemm(p),
  linear_forward: (p, present) => G.linearForward(p, present.has('bias')),
  linear_backward_data: (p) => G.linearBackwardData(p),
  linear_backward_params: (p, present) => [
    ...G.linearBackwardWeight(p),
    ...(present.has('dbias') ? biasGradient(p.batch, p.outFeatures, 1) : []),
  ],
  dropout_forward: (p) =>
    dropoutForward({
      length: p.length,
      seed: p.seed,
      stream: p.stream,
      offset: p.offset,
      threshold: Math.min(Math.ceil(p.p * 16777216), 16777216),
      keepScale: 1 / (1 - p.p),
    }),
  multiply: (p) => multiply(p),
  softmax_forward: (p) => softmaxForward({ length: p.outer * p.inner, axis: p.axis, inner: p.inner, log: +p.log }),
  softmax_backward: (p) => softmaxBackward({ length: p.outer * p.inner, axis: p.axis, inner: p.inner, log: +p.log }),
  softmax_cross_entropy_forward: (p) => crossEntropyForward(p),
  softmax_cross_entropy_backward: (p) => crossEntropyBackward({ length: p.batch * p.classes, classes: p.classes }),
  sgd_update: (p) => sgdUpdate(p),
  random_fill: (p) =>
    randomFill({ length: p.length, seed: p.seed, stream: p.stream, normal: +(p.distribution === 'normal'), a: p.a, b: p.b }),
  copy: (p) => copy(p),
  copy_slab: (p) => copySlab({ length: p.outer * p.count * p.inner, ...p }),
  accumulate: (p) => accumulate(p),
  fill: (p) => fill(p),
};

function lrnUniforms(p: KernelTable['lrn_forward']['params']) {
  const { batch, channels, spatial, size, alpha, beta, k } = p;
  return { length: batch * channels * spatial, channels, spatial, half: (size - 1) / 2, alpha, beta, k };
}
