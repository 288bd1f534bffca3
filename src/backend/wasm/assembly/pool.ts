// Max pooling over a range of planes (image × channel); padded taps never win.
import { GEMM_SCRATCH } from './gemm';
const BATCH = 0, CHANNELS = 1, IN_H = 2, IN_W = 3, OUT_H = 4, OUT_W = 5, K_H = 6, K_W = 7;
const STRIDE_H = 8, STRIDE_W = 9, PAD_T = 10, PAD_L = 11, DIL_H = 12, DIL_W = 13;

@inline function geo(g: usize, field: i32): i32 {
  return load<i32>(g + (<usize>field << 2));
}

/** The first tap k with start + k·step ≥ 0 (divides only at the border: integer division is slow). */
@inline function firstInside(start: i32, step: i32): i32 {
  return start >= 0 ? 0 : (step - 1 - start) / step;
}

/** One past the last tap k < taps with start + k·step < size. */
@inline function endInside(start: i32, step: i32, taps: i32, size: i32): i32 {
  return start + (taps - 1) * step < size ? taps : max(0, min(taps, (size - start + step - 1) / step));
}

/**
 * For every output of planes p0…p1, finds the window's maximum by PyTorch's rule (the first tap,
 * then any tap greater or NaN), branch-free, and writes it (forward) or routes the output gradient
 * to it (backward). The window is clipped to the input once per output, so the inner loop has no
 * bounds checks.
 */
@inline function forEachArgmax(g: usize, x: usize, p0: i32, p1: i32, y: usize, dy: usize, dx: usize, backward: bool): void {
  const H = geo(g, IN_H), W = geo(g, IN_W), OH = geo(g, OUT_H), OW = geo(g, OUT_W), KH = geo(g, K_H), KW = geo(g, K_W);
  const SH = geo(g, STRIDE_H), SW = geo(g, STRIDE_W), PT = geo(g, PAD_T), PL = geo(g, PAD_L), DH = geo(g, DIL_H), DW = geo(g, DIL_W);
  const inPlane = H * W;
  for (let p = p0; p < p1; p++) {
    const plane = x + ((<usize>p * inPlane) << 2);
    const outBase = (<usize>p * OH * OW) << 2;
    if (backward) memory.fill(dx + ((<usize>p * inPlane) << 2), 0, <usize>inPlane << 2);
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * SH - PT;
      const kyLo = firstInside(y0, DH), kyHi = endInside(y0, DH, KH, H);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * SW - PL;
        const kxLo = firstInside(x0, DW), kxHi = endInside(x0, DW, KW, W);
        const o = outBase + ((<usize>(oy * OW + ox)) << 2);
        let bestValue: f32 = -Infinity;
        if (!backward) {
          // The value only (wasm's f32.max is slow in V8: it orders ±0, which pooling need not).
          for (let ky = kyLo; ky < kyHi; ky++) {
            const row = plane + ((<usize>((y0 + ky * DH) * W + x0)) << 2);
            for (let kx = kxLo; kx < kxHi; kx++) {
              const v = load<f32>(row + ((<usize>(kx * DW)) << 2));
              bestValue = select<f32>(v, bestValue, v > bestValue || v != v);
            }
          }
          store<f32>(y + o, bestValue);
          continue;
        }
        let best = kyLo < kyHi && kxLo < kxHi ? (y0 + kyLo * DH) * W + x0 + kxLo * DW : -1;
        for (let ky = kyLo; ky < kyHi; ky++) {
          const row = (y0 + ky * DH) * W + x0;
          for (let kx = kxLo; kx < kxHi; kx++) {
            const at = row + kx * DW;
            const v = load<f32>(plane + (<usize>at << 2));
            const wins = v > bestValue || v != v;
            best = select<i32>(at, best, wins);
            bestValue = select<f32>(v, bestValue, wins);
          }
        }
        if (best >= 0) {
          const d = dx + ((<usize>p * inPlane + best) << 2);
          store<f32>(d, load<f32>(d) + load<f32>(dy + o));
        }
      }
    }
  }
}

/** max(a, b) where NaN wins, as PyTorch's pooling rule. */
@inline function maxNaN(a: v128, b: v128): v128 {
  return v128.bitselect(b, a, v128.or(f32x4.gt(b, a), f32x4.ne(b, b)));
}

/** Forward pooling without dilation, separably: the window's rows are reduced into `row` (one input
 * row wide) four pixels at a time, then each output takes the maximum of its columns of `row`. */
export function maxpool2dForward(g: usize, x: usize, y: usize, p0: i32, p1: i32, row: usize): void {
  if (geo(g, DIL_H) != 1 || geo(g, DIL_W) != 1 || geo(g, IN_W) > GEMM_SCRATCH) {
    forEachArgmax(g, x, p0, p1, y, 0, 0, false);
    return;
  }
  const H = geo(g, IN_H), W = geo(g, IN_W), OH = geo(g, OUT_H), OW = geo(g, OUT_W), KH = geo(g, K_H), KW = geo(g, K_W);
  const SH = geo(g, STRIDE_H), SW = geo(g, STRIDE_W), PT = geo(g, PAD_T), PL = geo(g, PAD_L);
  const rowBytes = <usize>W << 2;
  for (let p = p0; p < p1; p++) {
    const plane = x + <usize>p * H * rowBytes;
    let out = y + ((<usize>p * OH * OW) << 2);
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * SH - PT;
      const first = max(0, y0), last = min(H, y0 + KH);
      memory.copy(row, plane + <usize>first * rowBytes, rowBytes);
      for (let iy = first + 1; iy < last; iy++) {
        const src = plane + <usize>iy * rowBytes;
        let i = 0;
        for (; i + 4 <= W; i += 4) {
          const at = <usize>i << 2;
          v128.store(row + at, maxNaN(v128.load(row + at), v128.load(src + at)));
        }
        for (; i < W; i++) {
          const a = load<f32>(row + (<usize>i << 2)), b = load<f32>(src + (<usize>i << 2));
          store<f32>(row + (<usize>i << 2), b > a || b != b ? b : a);
        }
      }
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * SW - PL;
        const lo = max(0, x0), hi = min(W, x0 + KW);
        let m = load<f32>(row + (<usize>lo << 2));
        for (let ix = lo + 1; ix < hi; ix++) {
          const v = load<f32>(row + (<usize>ix << 2));
          m = select<f32>(v, m, v > m || v != v);
        }
        store<f32>(out, m);
        out += 4;
      }
    }
  }
}

export function maxpool2dBackward(g: usize, x: usize, dy: usize, dx: usize, p0: i32, p1: i32): void {
  forEachArgmax(g, x, p0, p1, 0, dy, dx, true);
}
