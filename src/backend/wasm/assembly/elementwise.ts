// Elementwise kernels over element ranges [i0, i1).
import { madd } from './gemm';

export const RELU = 0,
  TANH = 1,
  SIGMOID = 2;

export function activationForward(fn: i32, x: usize, y: usize, i0: i32, i1: i32): void {
  let i = i0;
  if (fn == RELU) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= i1; i += 4) v128.store(y + ((<usize>i) << 2), f32x4.max(v128.load(x + ((<usize>i) << 2)), zero));
  }
  if (fn == TANH) for (; i + 4 <= i1; i += 4) v128.store(y + ((<usize>i) << 2), tanh4(v128.load(x + ((<usize>i) << 2))));
  for (; i < i1; i++) {
    const v = load<f32>(x + ((<usize>i) << 2));
    store<f32>(y + ((<usize>i) << 2), fn == RELU ? (v <= 0 ? 0 : v) : fn == TANH ? Mathf.tanh(v) : 1 / (1 + Mathf.exp(-v)));
  }
}

/** tanh of 4 lanes as a rational function x·P(x²)/Q(x²) on x clamped to ±7.9053 (Eigen's fast
 * float tanh): within 3e-7 of tanh everywhere (checked on a 1e-4 grid over ±12), where the scalar
 * Mathf.tanh made tanh nets' steps 1.7× a ReLU net's. NaN stays NaN (min/max propagate it). */
function tanh4(v: v128): v128 {
  const limit = f32x4.splat(7.90531110763549805);
  const x = f32x4.max(f32x4.min(v, limit), f32x4.neg(limit));
  const x2 = f32x4.mul(x, x);
  let p = f32x4.splat(-2.76076847742355e-16);
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(2.00018790482477e-13));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(-8.60467152213735e-11));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(5.12229709037114e-8));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(1.48572235717979e-5));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(6.37261928875436e-4));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(4.89352455891786e-3));
  let q = f32x4.splat(1.19825839466702e-6);
  q = f32x4.add(f32x4.mul(q, x2), f32x4.splat(1.18534705686654e-4));
  q = f32x4.add(f32x4.mul(q, x2), f32x4.splat(2.268434632439e-3));
  q = f32x4.add(f32x4.mul(q, x2), f32x4.splat(4.89352518554385e-3));
  return f32x4.div(f32x4.mul(p, x), q);
}

/** dx = dy · f′, with f′ written in terms of the output y. */
export function activationBackward(fn: i32, y: usize, dy: usize, dx: usize, i0: i32, i1: i32): void {
  let i = i0;
  if (fn == RELU) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= i1; i += 4) {
      const at = (<usize>i) << 2;
      v128.store(dx + at, v128.and(v128.load(dy + at), f32x4.gt(v128.load(y + at), zero)));
    }
  }
  if (fn == TANH) {
    const one = f32x4.splat(1);
    for (; i + 4 <= i1; i += 4) {
      const at = (<usize>i) << 2;
      const v = v128.load(y + at);
      v128.store(dx + at, f32x4.mul(v128.load(dy + at), f32x4.sub(one, f32x4.mul(v, v))));
    }
  }
  for (; i < i1; i++) {
    const v = load<f32>(y + ((<usize>i) << 2));
    const d = load<f32>(dy + ((<usize>i) << 2));
    store<f32>(dx + ((<usize>i) << 2), fn == RELU ? (v > 0 ? d : 0) : fn == TANH ? d * (1 - v * v) : d * v * (1 - v));
  }
}

// Philox4x32-10, as src/random.ts: the dropout mask of element i is a pure function of (seed, i).
let out0: u32 = 0,
  out1: u32 = 0,
  out2: u32 = 0,
  out3: u32 = 0;

function philox(c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32): void {
  for (let round = 0; round < 10; round++) {
    const p0 = <u64>0xd2511f53 * <u64>c0,
      p1 = <u64>0xcd9e8d57 * <u64>c2;
    const hi0 = <u32>(p0 >> 32),
      lo0 = <u32>p0,
      hi1 = <u32>(p1 >> 32),
      lo1 = <u32>p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9e3779b9;
    k1 += 0xbb67ae85;
  }
  out0 = c0;
  out1 = c1;
  out2 = c2;
  out3 = c3;
}

/** mask = 0 with probability p, else 1/(1−p); y = x·mask; element i draws the word of element offset + i. */
export function dropoutForward(x: usize, y: usize, mask: usize, p: f32, seed: u32, stream: u32, offset: u32, i0: i32, i1: i32): void {
  const keep: f32 = 1 / (1 - p);
  for (let i = i0; i < i1; i++) {
    const g = offset + <u32>i;
    if (i == i0 || (g & 3) == 0) philox(g >> 2, 0, 0, 0, seed, stream);
    const lane = g & 3;
    const u = lane == 0 ? out0 : lane == 1 ? out1 : lane == 2 ? out2 : out3;
    const m: f32 = <f32>(u >> 8) * (1.0 / 16777216.0) < p ? 0 : keep;
    const at = (<usize>i) << 2;
    store<f32>(mask + at, m);
    store<f32>(y + at, load<f32>(x + at) * m);
  }
}

/** See the `random_fill` kernel: uniform (a + (b − a)·u) or normal (mean a, deviation b). i0 must be a multiple of 4. */
export function randomFill(y: usize, normal: i32, a: f32, b: f32, seed: u32, stream: u32, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i += 4) {
    philox(<u32>(i >> 2), 0, 0, 0, seed, stream);
    let v0: f32, v1: f32, v2: f32, v3: f32;
    if (normal) {
      const r0: f32 = Mathf.sqrt(<f32>-2 * Mathf.log(<f32>1 - unit(out0))),
        t0: f32 = <f32>2 * Mathf.PI * unit(out1);
      const r1: f32 = Mathf.sqrt(<f32>-2 * Mathf.log(<f32>1 - unit(out2))),
        t1: f32 = <f32>2 * Mathf.PI * unit(out3);
      v0 = a + b * r0 * Mathf.cos(t0);
      v1 = a + b * r0 * Mathf.sin(t0);
      v2 = a + b * r1 * Mathf.cos(t1);
      v3 = a + b * r1 * Mathf.sin(t1);
    } else {
      v0 = a + (b - a) * unit(out0);
      v1 = a + (b - a) * unit(out1);
      v2 = a + (b - a) * unit(out2);
      v3 = a + (b - a) * unit(out3);
    }
    const at = y + ((<usize>i) << 2);
    if (i < i1) store<f32>(at, v0);
    if (i + 1 < i1) store<f32>(at, v1, 4);
    if (i + 2 < i1) store<f32>(at, v2, 8);
    if (i + 3 < i1) store<f32>(at, v3, 12);
  }
}

@inline function unit(u: u32): f32 {
  return <f32>(u >> 8) * (1.0 / 16777216.0);
}

export function multiply(a: usize, b: usize, y: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const at = (<usize>i) << 2;
    v128.store(y + at, f32x4.mul(v128.load(a + at), v128.load(b + at)));
  }
  for (; i < i1; i++) store<f32>(y + ((<usize>i) << 2), load<f32>(a + ((<usize>i) << 2)) * load<f32>(b + ((<usize>i) << 2)));
}

/** y += x */
export function accumulate(x: usize, y: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const at = (<usize>i) << 2;
    v128.store(y + at, f32x4.add(v128.load(y + at), v128.load(x + at)));
  }
  for (; i < i1; i++) store<f32>(y + ((<usize>i) << 2), load<f32>(y + ((<usize>i) << 2)) + load<f32>(x + ((<usize>i) << 2)));
}

/** The paper's update: v ← momentum·v − weightDecay·lr·w − lr·g; w ← w + v. */
export function sgdUpdate(w: usize, g: usize, v: usize, lr: f32, momentum: f32, weightDecay: f32, i0: i32, i1: i32): void {
  const vm = f32x4.splat(momentum),
    vd = f32x4.splat(weightDecay * lr),
    vl = f32x4.splat(lr);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const at = (<usize>i) << 2;
    const wi = v128.load(w + at);
    const vi = f32x4.sub(f32x4.sub(f32x4.mul(vm, v128.load(v + at)), f32x4.mul(vd, wi)), f32x4.mul(vl, v128.load(g + at)));
    v128.store(v + at, vi);
    v128.store(w + at, f32x4.add(wi, vi));
  }
  for (; i < i1; i++) {
    const at = (<usize>i) << 2;
    const wi = load<f32>(w + at);
    const vi = momentum * load<f32>(v + at) - weightDecay * lr * wi - lr * load<f32>(g + at);
    store<f32>(v + at, vi);
    store<f32>(w + at, wi + vi);
  }
}

/** y[n][j] = bias[j] + x[n]·w[j] for outputs j0…j1: the linear layer for a small batch, where the
 * weights are read once, row by row, and packing them for a GEMM would cost more than the products.
 * Four rows at a time: four independent sums and four weight streams in flight, each x load used
 * four times (fc6 at batch 1, 2 threads: 19–22 → 25–27 GB/s of weights read). */
export function linearRows(x: usize, w: usize, bias: usize, y: usize, batch: i32, inF: i32, outF: i32, j0: i32, j1: i32): void {
  const rowBytes = (<usize>inF) << 2;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const w0 = w + <usize>j * rowBytes;
    for (let n = 0; n < batch; n++) {
      const xn = x + <usize>n * rowBytes;
      let s0 = f32x4.splat(0),
        s1 = f32x4.splat(0),
        s2 = f32x4.splat(0),
        s3 = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= inF; i += 4) {
        const at = (<usize>i) << 2;
        const xi = v128.load(xn + at);
        s0 = madd(xi, v128.load(w0 + at), s0);
        s1 = madd(xi, v128.load(w0 + rowBytes + at), s1);
        s2 = madd(xi, v128.load(w0 + 2 * rowBytes + at), s2);
        s3 = madd(xi, v128.load(w0 + 3 * rowBytes + at), s3);
      }
      const out = y + ((<usize>n * outF + j) << 2);
      const b = bias ? bias + ((<usize>j) << 2) : 0;
      finishRow(s0, xn, w0, i, inF, b, out);
      finishRow(s1, xn, w0 + rowBytes, i, inF, b ? b + 4 : 0, out + 4);
      finishRow(s2, xn, w0 + 2 * rowBytes, i, inF, b ? b + 8 : 0, out + 8);
      finishRow(s3, xn, w0 + 3 * rowBytes, i, inF, b ? b + 12 : 0, out + 12);
    }
  }
  for (; j < j1; j++) {
    const wj = w + <usize>j * rowBytes;
    for (let n = 0; n < batch; n++) {
      const xn = x + <usize>n * rowBytes;
      let s = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= inF; i += 4) s = madd(v128.load(xn + ((<usize>i) << 2)), v128.load(wj + ((<usize>i) << 2)), s);
      finishRow(s, xn, wj, i, inF, bias ? bias + ((<usize>j) << 2) : 0, y + ((<usize>n * outF + j) << 2));
    }
  }
}

/** Stores one output of linearRows: the vector sum's lanes, the products from `from` on, the bias. */
@inline function finishRow(s: v128, xn: usize, wj: usize, from: i32, inF: i32, bias: usize, out: usize): void {
  let sum = f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
  for (let k = from; k < inF; k++) sum += load<f32>(xn + ((<usize>k) << 2)) * load<f32>(wj + ((<usize>k) << 2));
  store<f32>(out, sum + (bias ? load<f32>(bias) : 0));
}

/** Rows r0…r1 of `bytes` each, row r being row r % rows of image r / rows: from src + image·srcImage
 * + row·srcRow to the same at dst, each followed by `zeros` bytes of zeros in every image but the
 * last of `images` (a batch of maps laid side by side as one wide map, and back: native/strips.ts). */
export function copyRows(
  src: usize,
  dst: usize,
  rows: i32,
  images: i32,
  srcImage: i32,
  srcRow: i32,
  dstImage: i32,
  dstRow: i32,
  bytes: i32,
  zeros: i32,
  r0: i32,
  r1: i32,
): void {
  for (let r = r0; r < r1; r++) {
    const image = r / rows,
      row = r % rows;
    const to = dst + <usize>image * dstImage + <usize>row * dstRow;
    memory.copy(to, src + <usize>image * srcImage + <usize>row * srcRow, bytes);
    if (image < images - 1) memory.fill(to + bytes, 0, zeros);
  }
}
