/**
 * Every matrix product on the GPU is one tiled GEMM with its operands read through functions:
 * `loadA(z, m, k)`, `loadB(z, k, n)` and `store(z, m, n, value)`. The plain GEMM and the linear
 * layer read matrices; the convolutions read their input through im2col coordinates computed on
 * the fly (implicit GEMM), so no column buffer exists, with `z` the group. A 64×64 output tile per
 * workgroup of 16×16 threads, each accumulating 4×4 outputs from 16-deep slices of A and B staged
 * in workgroup memory.
 */
import type { Conv2dGeometry, KernelTable, LinearParams } from '../kernels.js';
import {
  type Binding,
  type Dispatch,
  type FieldType,
  fieldsOf,
  MAX_GROUPS,
  perElement,
  roles,
  shader,
  WINDOW_FIELDS,
  windowUniforms,
} from './shader.js';

const TILE = 64;
const DEPTH = 16;

const GEMM_FIELDS = [
  ['M', 'u32'],
  ['N', 'u32'],
  ['K', 'u32'],
  ['colBase', 'u32'],
  ['splits', 'u32'],
  ['depth', 'u32'],
] as const;

/** Split-K: a product with fewer output tiles than this is split along K into parts of at least
 * MIN_SPLIT_DEPTH, summed after (the filter gradient: K = batch × output pixels, 387 K for the paper
 * net's conv1 at batch 128, over as few as 12 tiles, would leave a large GPU nearly idle). */
const SPLIT_BELOW_GROUPS = 256;
const MIN_SPLIT_DEPTH = 512;

const CONV_FIELDS = [...WINDOW_FIELDS, ...fieldsOf(['batch', 'inC', 'outC', 'icpg', 'ocpg'], 'i32')];

const gemmBody = (operands: string) => `${operands}
// tileA[m][k / 4] holds 4 consecutive depths of row m; tileB[k][n / 4] 4 consecutive columns at depth k.
var<workgroup> tileA: array<vec4<f32>, ${(DEPTH * TILE) / 4}>;
var<workgroup> tileB: array<vec4<f32>, ${(DEPTH * TILE) / 4}>;

// The part of K this workgroup sums (0 unless split): workgroup_id.z = slice · splits + part.
var<private> part: u32;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let z = wg.z / p.splits;
  let slicePart = wg.z % p.splits; // a let: uniform, as the barriers in the loop below require
  part = slicePart;
  let kBegin = slicePart * p.depth;
  let kEnd = min(p.K, kBegin + p.depth);
  let row0 = wg.y * ${TILE}u;
  let col0 = p.colBase + wg.x * ${TILE}u;
  let t = lid.y * 16u + lid.x;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = kBegin; k0 < kEnd; k0 += ${DEPTH}u) {
    // Thread t stages row t / 4 of A at depths 4·(t % 4) … + 3, and depth t / 16 of B at
    // columns 4·(t % 16) … + 3: neighbouring threads read neighbouring addresses of row-major operands.
    let am = row0 + t / 4u;
    let ak = k0 + t % 4u * 4u;
    let bk = k0 + t / 16u;
    let bn = col0 + t % 16u * 4u;
    var fromA = vec4<f32>(0.0);
    var fromB = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
      if (am < p.M && ak + i < kEnd) { fromA[i] = loadA(z, am, ak + i); }
      if (bk < kEnd && bn + i < p.N) { fromB[i] = loadB(z, bk, bn + i); }
    }
    tileA[t] = fromA;
    tileB[t] = fromB;
    workgroupBarrier();
    for (var kq = 0u; kq < ${DEPTH / 4}u; kq++) {
      var rowsA: array<vec4<f32>, 4>;
      for (var i = 0u; i < 4u; i++) { rowsA[i] = tileA[(lid.y * 4u + i) * 4u + kq]; }
      for (var kk = 0u; kk < 4u; kk++) {
        let colsB = tileB[(kq * 4u + kk) * 16u + lid.x];
        for (var i = 0u; i < 4u; i++) { acc[i] = fma(vec4<f32>(rowsA[i][kk]), colsB, acc[i]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + lid.y * 4u + i;
    for (var j = 0u; j < 4u; j++) {
      let n = col0 + lid.x * 4u + j;
      if (m < p.M && n < p.N) { store(z, m, n, acc[i][j]); }
    }
  }
}`;

/** Dispatches for an M×N product in `z` slices, each summing K in `splits` parts (its store then sees
 * `part`); columns beyond one dispatch's reach go to further dispatches that start at `colBase`. */
function gemmDispatches(
  key: string,
  extraFields: readonly (readonly [string, FieldType])[],
  bindings: readonly Binding[],
  operands: string,
  shape: { M: number; N: number; K: number; z: number; splits?: number },
  uniforms: Record<string, number>,
): Dispatch[] {
  const splits = shape.splits ?? 1;
  const depth = Math.ceil(shape.K / splits / DEPTH) * DEPTH;
  const compiled = shader(key, [...GEMM_FIELDS, ...extraFields], bindings, () => gemmBody(operands));
  const rows = Math.ceil(shape.M / TILE);
  if (rows > MAX_GROUPS || shape.z * splits > MAX_GROUPS)
    throw new Error(`webgpu ${key}: ${shape.M} rows × ${shape.z} slices exceed one dispatch`);
  const out: Dispatch[] = [];
  const columnsPerDispatch = MAX_GROUPS * TILE;
  for (let colBase = 0; colBase < shape.N; colBase += columnsPerDispatch) {
    const columns = Math.min(columnsPerDispatch, shape.N - colBase);
    out.push({
      shader: compiled,
      uniforms: { ...uniforms, M: shape.M, N: shape.N, K: shape.K, colBase, splits, depth },
      groups: [Math.ceil(columns / TILE), rows, shape.z * splits],
    });
  }
  return out;
}

export function gemm(params: KernelTable['gemm']['params']): Dispatch[] {
  const operands = `
fn loadA(z: u32, m: u32, k: u32) -> f32 { if (p.transA != 0u) { return a[k * p.M + m]; } return a[m * p.K + k]; }
fn loadB(z: u32, k: u32, n: u32) -> f32 { if (p.transB != 0u) { return b[n * p.K + k]; } return b[k * p.N + n]; }
fn store(z: u32, m: u32, n: u32, v: f32) {
  let i = m * p.N + n;
  // beta = 0 overwrites (BLAS convention), so stale NaN in c cannot leak through.
  if (p.beta == 0.0) { c[i] = p.alpha * v; } else { c[i] = p.alpha * v + p.beta * c[i]; }
}`;
  const fields = [
    ['transA', 'u32'],
    ['transB', 'u32'],
    ['alpha', 'f32'],
    ['beta', 'f32'],
  ] as const;
  const uniforms = { transA: +params.transA, transB: +params.transB, alpha: params.alpha, beta: params.beta };
  return gemmDispatches('gemm', fields, roles(['a', 'b'], ['c']), operands, { ...params, z: 1 }, uniforms);
}

export function linearForward(p: LinearParams, hasBias: boolean): Dispatch[] {
  const operands = `
fn loadA(z: u32, m: u32, k: u32) -> f32 { return x[m * p.K + k]; }
fn loadB(z: u32, k: u32, n: u32) -> f32 { return weight[n * p.K + k]; }
fn store(z: u32, m: u32, n: u32, v: f32) { y[m * p.N + n] = v${hasBias ? ' + bias[n]' : ''}; }`;
  const bindings = roles(hasBias ? ['x', 'weight', 'bias'] : ['x', 'weight'], ['y']);
  return gemmDispatches(`linear_forward${hasBias ? '+bias' : ''}`, [], bindings, operands, linearShape(p, 'forward'), {});
}

export function linearBackwardData(p: LinearParams): Dispatch[] {
  const operands = `
fn loadA(z: u32, m: u32, k: u32) -> f32 { return dy[m * p.K + k]; }
fn loadB(z: u32, k: u32, n: u32) -> f32 { return weight[k * p.N + n]; }
fn store(z: u32, m: u32, n: u32, v: f32) { dx[m * p.N + n] = v; }`;
  return gemmDispatches('linear_backward_data', [], roles(['dy', 'weight'], ['dx']), operands, linearShape(p, 'data'), {});
}

/** dweight = dyᵀ·x; the bias gradient is the channel sum of dy (`biasGradient`, kernels.ts). */
export function linearBackwardWeight(p: LinearParams): Dispatch[] {
  const operands = `
fn loadA(z: u32, m: u32, k: u32) -> f32 { return dy[k * p.M + m]; }
fn loadB(z: u32, k: u32, n: u32) -> f32 { return x[k * p.N + n]; }
fn store(z: u32, m: u32, n: u32, v: f32) { dweight[m * p.N + n] = v; }`;
  return gemmDispatches('linear_backward_weight', [], roles(['x', 'dy'], ['dweight']), operands, linearShape(p, 'weight'), {});
}

function linearShape(p: LinearParams, product: 'forward' | 'data' | 'weight') {
  if (product === 'forward') return { M: p.batch, N: p.outFeatures, K: p.inFeatures, z: 1 };
  if (product === 'data') return { M: p.batch, N: p.inFeatures, K: p.outFeatures, z: 1 };
  return { M: p.outFeatures, N: p.inFeatures, K: p.batch, z: 1 };
}

function convUniforms(g: Conv2dGeometry): Record<string, number> {
  const [icpg, ocpg] = [g.inChannels / g.groups, g.outChannels / g.groups];
  return { ...windowUniforms(g), batch: g.batch, inC: g.inChannels, outC: g.outChannels, icpg, ocpg };
}

/** The input tap of im2col row `k` (input channel in the group, ky, kx) for output position `q`
 * of image `n`, or 0 outside the input. */
const IM2COL = `
fn inputTap(g: u32, n: u32, q: u32, k: u32) -> f32 {
  let oy = i32(q) / p.outW;
  let ox = i32(q) % p.outW;
  let taps = p.kH * p.kW;
  let icg = i32(k) / taps;
  let r = i32(k) % taps;
  let iy = oy * p.sH - p.padT + (r / p.kW) * p.dH;
  let ix = ox * p.sW - p.padL + (r % p.kW) * p.dW;
  if (iy < 0 || iy >= p.inH || ix < 0 || ix >= p.inW) { return 0.0; }
  return x[((i32(n) * p.inC + i32(g) * p.icpg + icg) * p.inH + iy) * p.inW + ix];
}`;

/** y[n, g·ocpg + m, q] = Σ_k weight[g·ocpg + m, k] · im2col(x)[k, (n, q)] (+ bias). */
export function convForward(g: Conv2dGeometry, hasBias: boolean): Dispatch[] {
  const operands = `${IM2COL}
fn loadA(z: u32, m: u32, k: u32) -> f32 { return weight[(z * u32(p.ocpg) + m) * p.K + k]; }
fn loadB(z: u32, k: u32, col: u32) -> f32 {
  let outputs = u32(p.outH * p.outW);
  return inputTap(z, col / outputs, col % outputs, k);
}
fn store(z: u32, m: u32, col: u32, v: f32) {
  let outputs = u32(p.outH * p.outW);
  let oc = z * u32(p.ocpg) + m;
  y[((col / outputs) * u32(p.outC) + oc) * outputs + col % outputs] = v${hasBias ? ' + bias[oc]' : ''};
}`;
  const bindings = roles(hasBias ? ['x', 'weight', 'bias'] : ['x', 'weight'], ['y']);
  const shape = {
    M: g.outChannels / g.groups,
    N: g.batch * g.outHeight * g.outWidth,
    K: (g.inChannels / g.groups) * g.kernelH * g.kernelW,
    z: g.groups,
  };
  return gemmDispatches(`conv2d_forward${hasBias ? '+bias' : ''}`, CONV_FIELDS, bindings, operands, shape, convUniforms(g));
}

/** dx[n, g·icpg + m, (iy, ix)] = Σ over (oc, ky, kx) of weight · dy at the output that tap reached
 * (none where the stride skips it or it falls outside the output). */
export function convBackwardData(g: Conv2dGeometry): Dispatch[] {
  const operands = `
fn loadA(z: u32, m: u32, k: u32) -> f32 {
  let taps = u32(p.kH * p.kW);
  return weight[((z * u32(p.ocpg) + k / taps) * u32(p.icpg) + m) * taps + k % taps];
}
fn loadB(z: u32, k: u32, col: u32) -> f32 {
  let pixels = u32(p.inH * p.inW);
  let n = col / pixels;
  let q = i32(col % pixels);
  let taps = p.kH * p.kW;
  let oc = i32(k) / taps;
  let r = i32(k) % taps;
  let ty = q / p.inW + p.padT - (r / p.kW) * p.dH;
  let tx = q % p.inW + p.padL - (r % p.kW) * p.dW;
  if (ty < 0 || tx < 0 || ty % p.sH != 0 || tx % p.sW != 0) { return 0.0; }
  let oy = ty / p.sH;
  let ox = tx / p.sW;
  if (oy >= p.outH || ox >= p.outW) { return 0.0; }
  return dy[((i32(n) * p.outC + i32(z) * p.ocpg + oc) * p.outH + oy) * p.outW + ox];
}
fn store(z: u32, m: u32, col: u32, v: f32) {
  let pixels = u32(p.inH * p.inW);
  dx[((col / pixels) * u32(p.inC) + z * u32(p.icpg) + m) * pixels + col % pixels] = v;
}`;
  const shape = {
    M: g.inChannels / g.groups,
    N: g.batch * g.inHeight * g.inWidth,
    K: (g.outChannels / g.groups) * g.kernelH * g.kernelW,
    z: g.groups,
  };
  return gemmDispatches('conv2d_backward_data', CONV_FIELDS, roles(['dy', 'weight'], ['dx']), operands, shape, convUniforms(g));
}

/** How many parts to split K into, so that at least SPLIT_BELOW_GROUPS workgroups run (1: none). */
export function splitsFor(shape: { M: number; N: number; K: number; z: number }): number {
  const tiles = Math.ceil(shape.M / TILE) * Math.ceil(shape.N / TILE) * shape.z;
  return Math.max(1, Math.min(Math.ceil(SPLIT_BELOW_GROUPS / tiles), Math.floor(shape.K / MIN_SPLIT_DEPTH)));
}

/** dweight[g·ocpg + m, k] = Σ over (n, q) of dy[n, g·ocpg + m, q] · im2col(x)[k, (n, q)]; the bias
 * gradient is the channel sum of dy (`biasGradient`, kernels.ts). Split along (n, q) when the
 * output has few tiles: each part writes its own copy of dweight in `scratch`, and `split_sum` adds
 * them in order. */
export function convBackwardWeight(g: Conv2dGeometry): Dispatch[] {
  const shape = {
    M: g.outChannels / g.groups,
    N: (g.inChannels / g.groups) * g.kernelH * g.kernelW,
    K: g.batch * g.outHeight * g.outWidth,
    z: g.groups,
  };
  const splits = splitsFor(shape);
  const target = splits > 1 ? 'scratch[part * p.total + ' : 'dweight[';
  const operands = `${IM2COL}
fn loadA(z: u32, m: u32, k: u32) -> f32 {
  let outputs = u32(p.outH * p.outW);
  return dy[((k / outputs) * u32(p.outC) + z * u32(p.ocpg) + m) * outputs + k % outputs];
}
fn loadB(z: u32, k: u32, col: u32) -> f32 {
  let outputs = u32(p.outH * p.outW);
  return inputTap(z, k / outputs, k % outputs, col);
}
fn store(z: u32, m: u32, col: u32, v: f32) { ${target}(z * u32(p.ocpg) + m) * p.N + col] = v; }`;
  const uniforms = convUniforms(g);
  if (splits === 1)
    return gemmDispatches('conv2d_backward_weight', CONV_FIELDS, roles(['x', 'dy'], ['dweight']), operands, shape, uniforms);
  const total = g.outChannels * shape.N;
  const fields = [...CONV_FIELDS, ['total', 'u32'] as const];
  const bindings = roles(['x', 'dy'], ['scratch']);
  const parts = gemmDispatches('conv2d_backward_weight+splitK', fields, bindings, operands, { ...shape, splits }, { ...uniforms, total });
  return [...parts, ...splitSum({ length: total, splits })].map((d) => ({ ...d, scratch: total * splits }));
}

const splitSum = perElement(
  'split_sum',
  [['splits', 'u32']],
  roles(['scratch'], ['dweight']),
  `  var sum = 0.0;
  for (var j = 0u; j < p.splits; j++) { sum += scratch[j * p.length + i]; }
  dweight[i] = sum;`,
);
