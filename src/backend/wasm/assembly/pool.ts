// Max pooling over a range of planes (image × channel); padded taps never win.
import { GEMM_SCRATCH } from './gemm';
import { DIL_H, DIL_W, IN_H, IN_W, K_H, K_W, OUT_H, OUT_W, PAD_L, PAD_T, STRIDE_H, STRIDE_W } from '../geometry';
import { geo } from './block';

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
  const H = geo(g, IN_H),
    W = geo(g, IN_W),
    OH = geo(g, OUT_H),
    OW = geo(g, OUT_W),
    KH = geo(g, K_H),
    KW = geo(g, K_W);
  const SH = geo(g, STRIDE_H),
    SW = geo(g, STRIDE_W),
    PT = geo(g, PAD_T),
    PL = geo(g, PAD_L),
    DH = geo(g, DIL_H),
    DW = geo(g, DIL_W);
  const inPlane = H * W;
  for (let p = p0; p < p1; p++) {
    const plane = x + ((<usize>p * inPlane) << 2);
    const outBase = (<usize>p * OH * OW) << 2;
    if (backward) memory.fill(dx + ((<usize>p * inPlane) << 2), 0, (<usize>inPlane) << 2);
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * SH - PT;
      const kyLo = firstInside(y0, DH),
        kyHi = endInside(y0, DH, KH, H);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * SW - PL;
        const kxLo = firstInside(x0, DW),
          kxHi = endInside(x0, DW, KW, W);
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
            const v = load<f32>(plane + ((<usize>at) << 2));
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

/** The floats at `at`, at + 8, at + 16 and at + 24 bytes: one tap of four stride-2 windows. */
@inline function evenLanes(at: usize): v128 {
  return i32x4.shuffle(v128.load(at), v128.load(at, 16), 0, 2, 4, 6);
}

/** Whether outputs ox…ox+3 have stride-2 windows (starting at x0) wholly inside a row of W, with
 * room for `evenLanes`' second load. */
@inline function fourWindowsInRow(SW: i32, x0: i32, ox: i32, OW: i32, KW: i32, W: i32): bool {
  return SW == 2 && x0 >= 0 && ox + 4 <= OW && x0 + KW + 7 <= W;
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
  const H = geo(g, IN_H),
    W = geo(g, IN_W),
    OH = geo(g, OUT_H),
    OW = geo(g, OUT_W),
    KH = geo(g, K_H),
    KW = geo(g, K_W);
  const SH = geo(g, STRIDE_H),
    SW = geo(g, STRIDE_W),
    PT = geo(g, PAD_T),
    PL = geo(g, PAD_L);
  const rowBytes = (<usize>W) << 2;
  for (let p = p0; p < p1; p++) {
    const plane = x + <usize>p * H * rowBytes;
    let out = y + ((<usize>p * OH * OW) << 2);
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * SH - PT;
      const first = max(0, y0),
        last = min(H, y0 + KH);
      // The first two rows reduce straight into `row`, and a one-row window is read in place: copying the first row
      // into `row` first took 5–10 % longer (64×32×28×28 → 14×14: 2.69 against 2.36 ms, 1 thread, alternating builds).
      let reduced = plane + <usize>first * rowBytes;
      for (let iy = first + 1; iy < last; iy++) {
        const src = plane + <usize>iy * rowBytes;
        let i = 0;
        for (; i + 4 <= W; i += 4) {
          const at = (<usize>i) << 2;
          v128.store(row + at, maxNaN(v128.load(reduced + at), v128.load(src + at)));
        }
        for (; i < W; i++) {
          const a = load<f32>(reduced + ((<usize>i) << 2)),
            b = load<f32>(src + ((<usize>i) << 2));
          store<f32>(row + ((<usize>i) << 2), b > a || b != b ? b : a);
        }
        reduced = row;
      }
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * SW - PL;
        if (fourWindowsInRow(SW, x0, ox, OW, KW, W)) {
          let src = reduced + ((<usize>x0) << 2);
          let m = evenLanes(src);
          for (let kx = 1; kx < KW; kx++) {
            src += 4;
            m = maxNaN(m, evenLanes(src));
          }
          v128.store(out, m);
          out += 16;
          ox += 3;
          continue;
        }
        const lo = max(0, x0),
          hi = min(W, x0 + KW);
        let m = load<f32>(reduced + ((<usize>lo) << 2));
        for (let ix = lo + 1; ix < hi; ix++) {
          const v = load<f32>(reduced + ((<usize>ix) << 2));
          m = select<f32>(v, m, v > m || v != v);
        }
        store<f32>(out, m);
        out += 4;
      }
    }
  }
}

/**
 * Forward pooling of planes p0…p1 of a channel-blocked tensor (N, C/block, H, W, block: oneDNN's
 * nChw8c and nChw16c, which the native backend keeps between convolutions): a tap is `block`
 * channels side by side, taken four at a time, NaN winning. Without dilation separably, as
 * `maxpool2dForward`: each output row's window rows are reduced into `row` (one input row of
 * pixels), then each output takes the maximum of its columns of `row` (the torchvision net's pool1
 * at batch 64: 12 ms tap by tap, 2 threads). A window wholly in the padding gives −∞.
 */
export function maxpool2dBlocked(g: usize, x: usize, y: usize, p0: i32, p1: i32, block: i32, row: usize): void {
  const H = geo(g, IN_H),
    W = geo(g, IN_W),
    OH = geo(g, OUT_H),
    OW = geo(g, OUT_W),
    KH = geo(g, K_H),
    KW = geo(g, K_W);
  const SH = geo(g, STRIDE_H),
    SW = geo(g, STRIDE_W),
    PT = geo(g, PAD_T),
    PL = geo(g, PAD_L),
    DH = geo(g, DIL_H),
    DW = geo(g, DIL_W);
  const pixel = (<usize>block) << 2,
    rowBytes = <usize>W * pixel;
  const separable = DH == 1 && DW == 1 && W * block <= GEMM_SCRATCH;
  for (let p = p0; p < p1; p++) {
    const plane = x + <usize>p * H * rowBytes;
    let out = y + <usize>p * OH * OW * pixel;
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * SH - PT;
      const ky0 = firstInside(y0, DH),
        ky1 = endInside(y0, DH, KH, H);
      let reduced = plane + <usize>(y0 + ky0) * rowBytes;
      if (separable && ky0 < ky1) {
        for (let ky = ky0 + 1; ky < ky1; ky++) {
          const src = plane + <usize>(y0 + ky) * rowBytes;
          for (let at: usize = 0; at < rowBytes; at += 16) v128.store(row + at, maxNaN(v128.load(reduced + at), v128.load(src + at)));
          reduced = row;
        }
      }
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * SW - PL;
        const kx0 = firstInside(x0, DW),
          kx1 = endInside(x0, DW, KW, W);
        for (let c: usize = 0; c < pixel; c += 16) {
          let m = f32x4.splat(-Infinity);
          if (separable) {
            for (let kx = kx0; kx < kx1 && ky0 < ky1; kx++) m = maxNaN(m, v128.load(reduced + <usize>(x0 + kx) * pixel + c));
          } else {
            for (let ky = ky0; ky < ky1; ky++) {
              const taps = plane + <usize>(y0 + ky * DH) * rowBytes + c;
              for (let kx = kx0; kx < kx1; kx++) m = maxNaN(m, v128.load(taps + <usize>(x0 + kx * DW) * pixel));
            }
          }
          v128.store(out + c, m);
        }
        out += pixel;
      }
    }
  }
}

/**
 * Backward pooling without dilation, in two passes per plane that find the same tap as the
 * row-major scan: (1) for every input row and output column, the winning tap of the window's
 * columns in that row (value and plane index, kept in `rows`: IN_H × OUT_W of each); (2) for every
 * output, the winning row among the window's rows, four outputs at a time. The first pass's results
 * are shared by the output rows whose windows overlap.
 */
export function maxpool2dBackward(g: usize, x: usize, dy: usize, dx: usize, p0: i32, p1: i32, rows: usize): void {
  const H = geo(g, IN_H),
    W = geo(g, IN_W),
    OH = geo(g, OUT_H),
    OW = geo(g, OUT_W),
    KH = geo(g, K_H),
    KW = geo(g, K_W);
  if (geo(g, DIL_H) != 1 || geo(g, DIL_W) != 1 || 2 * H * (OW + 4) > GEMM_SCRATCH) {
    forEachArgmax(g, x, p0, p1, 0, dy, dx, true);
    return;
  }
  const SH = geo(g, STRIDE_H),
    SW = geo(g, STRIDE_W),
    PT = geo(g, PAD_T),
    PL = geo(g, PAD_L);
  const stride = (OW + 3) & ~3; // row length in `rows`, padded for 4-wide loads
  const values = rows,
    taps = rows + ((<usize>H * stride) << 2);
  for (let p = p0; p < p1; p++) {
    const plane = x + ((<usize>p * H * W) << 2),
      grad = dx + ((<usize>p * H * W) << 2);
    memory.fill(grad, 0, (<usize>H * W) << 2);
    for (let iy = 0; iy < H; iy++) {
      const row = plane + ((<usize>iy * W) << 2);
      const at = (<usize>iy * stride) << 2;
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * SW - PL;
        if (fourWindowsInRow(SW, x0, ox, OW, KW, W)) {
          const lanes = i32x4.add(i32x4.splat(iy * W + x0), i32x4(0, 2, 4, 6));
          let src = row + ((<usize>x0) << 2);
          let best = evenLanes(src),
            tap = lanes;
          for (let kx = 1; kx < KW; kx++) {
            src += 4;
            const v = evenLanes(src);
            const wins = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
            best = v128.bitselect(v, best, wins);
            tap = v128.bitselect(i32x4.add(lanes, i32x4.splat(kx)), tap, wins);
          }
          v128.store(values + at + ((<usize>ox) << 2), best);
          v128.store(taps + at + ((<usize>ox) << 2), tap);
          ox += 3;
          continue;
        }
        const lo = max(0, x0),
          hi = min(W, x0 + KW);
        let best: f32 = -Infinity,
          tap = lo < hi ? iy * W + lo : -1;
        for (let ix = lo; ix < hi; ix++) {
          const v = load<f32>(row + ((<usize>ix) << 2));
          const wins = v > best || v != v;
          best = select<f32>(v, best, wins);
          tap = select<i32>(iy * W + ix, tap, wins);
        }
        store<f32>(values + at + ((<usize>ox) << 2), best);
        store<i32>(taps + at + ((<usize>ox) << 2), tap);
      }
    }
    const outputs = dy + ((<usize>p * OH * OW) << 2);
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * SH - PT;
      const first = max(0, y0),
        last = min(H, y0 + KH);
      for (let ox = 0; ox < OW; ox += 4) {
        // The first row's winner stands unless a later row beats it (a window of −∞ keeps its first tap).
        let best = f32x4.splat(-Infinity),
          at = i32x4.splat(-1);
        if (first < last) {
          const offset = (<usize>first * stride + ox) << 2;
          best = v128.load(values + offset);
          at = v128.load(taps + offset);
        }
        for (let iy = first + 1; iy < last; iy++) {
          const offset = (<usize>iy * stride + ox) << 2;
          const v = v128.load(values + offset);
          const wins = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, wins);
          at = v128.bitselect(v128.load(taps + offset), at, wins);
        }
        for (let lane = 0; lane < min(4, OW - ox); lane++) {
          const tap =
            lane == 0
              ? i32x4.extract_lane(at, 0)
              : lane == 1
                ? i32x4.extract_lane(at, 1)
                : lane == 2
                  ? i32x4.extract_lane(at, 2)
                  : i32x4.extract_lane(at, 3);
          if (tap < 0) continue;
          const d = grad + ((<usize>tap) << 2);
          store<f32>(d, load<f32>(d) + load<f32>(outputs + ((<usize>(oy * OW + ox + lane)) << 2)));
        }
      }
    }
  }
}

/** PyTorch's adaptive bins: output cell i covers [floor(i·in/out), ceil((i+1)·in/out)). */
@inline function binStart(i: i32, inSize: i32, outSize: i32): i32 {
  return (i * inSize) / outSize;
}

@inline function binEnd(i: i32, inSize: i32, outSize: i32): i32 {
  return ((i + 1) * inSize + outSize - 1) / outSize;
}

/**
 * Adaptive average pooling of planes p0…p1: forward, y = the mean of each cell's bin of x; backward,
 * each cell's dy / count added over its bin of dx (bins overlap when the sizes do not divide). The
 * forward pass sums the bin, then divides once (the reference divides every term).
 */
export function adaptiveAvgpool2d(src: usize, dst: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32, backward: bool): void {
  for (let p = p0; p < p1; p++) {
    const input = (backward ? dst : src) + ((<usize>p * H * W) << 2);
    const output = (backward ? src : dst) + ((<usize>p * OH * OW) << 2);
    if (backward) memory.fill(input, 0, (<usize>H * W) << 2);
    for (let oy = 0; oy < OH; oy++) {
      const y0 = binStart(oy, H, OH),
        y1 = binEnd(oy, H, OH);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = binStart(ox, W, OW),
          x1 = binEnd(ox, W, OW);
        const count = <f32>((y1 - y0) * (x1 - x0));
        const cell = output + ((<usize>(oy * OW + ox)) << 2);
        const share = backward ? load<f32>(cell) / count : 0;
        let sum: f32 = 0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            const at = input + ((<usize>(iy * W + ix)) << 2);
            if (backward) store<f32>(at, load<f32>(at) + share);
            else sum += load<f32>(at);
          }
        }
        if (!backward) store<f32>(cell, sum / count);
      }
    }
  }
}
