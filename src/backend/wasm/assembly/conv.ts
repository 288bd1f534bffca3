// Convolution as GEMM over im2col panels. Each entry point takes a range of work that no other
// thread touches: output columns (forward), input channels (data gradient), or columns of the
// weight gradient, so threads never write the same memory.
import { gemm, gemmPacked, KC, MC, packedSize, packWhole } from './gemm';

import {
  BATCH,
  DIL_H,
  DIL_W,
  GROUPS,
  IN_C,
  IN_H,
  IN_W,
  K_H,
  K_W,
  OUT_C,
  OUT_H,
  OUT_W,
  PAD_L,
  PAD_T,
  STRIDE_H,
  STRIDE_W,
} from '../geometry';
import { geo } from './block';

/**
 * Moves data between an image and its im2col panel: rows r0…r1 (taps (c, ky, kx) within the group),
 * columns j0…j1 (output pixels), the panel's rows `width` floats apart. With `toCol`, col[r − r0][j − j0] = x at tap r of pixel j (0 in
 * the padding); without, x at that tap += col[…] (the adjoint, for the data gradient). Each output
 * row's span of in-bounds pixels is found once, so the inner loop is a strided copy.
 */
@inline function transfer(
  x: usize,
  g: usize,
  group: i32,
  r0: i32,
  r1: i32,
  j0: i32,
  j1: i32,
  col: usize,
  width: i32,
  toCol: bool,
  masks: usize,
): void {
  const H = geo(g, IN_H),
    W = geo(g, IN_W),
    OW = geo(g, OUT_W),
    KH = geo(g, K_H),
    KW = geo(g, K_W);
  const SH = geo(g, STRIDE_H),
    SW = geo(g, STRIDE_W),
    PT = geo(g, PAD_T),
    PL = geo(g, PAD_L),
    DH = geo(g, DIL_H),
    DW = geo(g, DIL_W);
  const cg = geo(g, IN_C) / geo(g, GROUPS);
  if (SH == 1 && SW == 1 && DH == 1 && DW == 1 && OW == W && geo(g, OUT_H) == H && KW * ((j1 - j0 + 3) & ~3) <= MASK_INTS) {
    transferSame(x, H, W, KH, KW, PT, PL, group * cg, r0, r1, j0, j1, col, width, toCol, masks);
    return;
  }
  const step = (<usize>SW) << 2;
  for (let r = r0; r < r1; r++) {
    const kx = r % KW,
      ky = (r / KW) % KH,
      c = group * cg + r / (KW * KH);
    const plane = x + ((<usize>c * H * W) << 2);
    const panelRow = col + ((<usize>(r - r0) * width) << 2);
    // ix = ox·SW + shift lies in [0, W) for ox in [oxLo, oxHi)
    const shift = kx * DW - PL;
    const oxLo = shift >= 0 ? 0 : (-shift + SW - 1) / SW;
    const oxHi = W - shift <= 0 ? 0 : min(OW, (W - shift + SW - 1) / SW);
    for (let oy = j0 / OW; oy * OW < j1; oy++) {
      const first = max(j0, oy * OW),
        last = min(j1, (oy + 1) * OW); // pixels of this output row
      let out = panelRow + ((<usize>(first - j0)) << 2);
      const iy = oy * SH - PT + ky * DH;
      const lo = max(first, oy * OW + oxLo),
        hi = min(last, oy * OW + oxHi);
      if (iy < 0 || iy >= H || lo >= hi) {
        if (toCol) zero(out, last - first);
        continue;
      }
      if (toCol) {
        zero(out, lo - first);
        zero(panelRow + ((<usize>(hi - j0)) << 2), last - hi);
      }
      out = panelRow + ((<usize>(lo - j0)) << 2);
      let src = plane + ((<usize>iy * W + (lo - oy * OW) * SW + shift) << 2);
      const end = panelRow + ((<usize>(hi - j0)) << 2);
      if (toCol) {
        if (SW == 1) for (; out + 16 <= end; out += 16, src += 16) v128.store(out, v128.load(src));
        for (; out < end; out += 4, src += step) store<f32>(out, load<f32>(src));
      } else {
        if (SW == 1) for (; out + 16 <= end; out += 16, src += 16) v128.store(src, f32x4.add(v128.load(src), v128.load(out)));
        for (; out < end; out += 4, src += step) store<f32>(src, load<f32>(src) + load<f32>(out));
      }
    }
  }
}

/** Ints of scratch (the GEMM's, idle while panels are filled) that `transferSame`'s column masks may take. */
const MASK_INTS = MC * KC;

/**
 * `transfer` for a "same" convolution (stride 1, no dilation, output the input's size), where tap
 * (c, ky, kx) of pixel j reads the plane at j + (ky − PT)·W + (kx − PL): one shifted pass per tap
 * over the pixels whose input row exists, instead of one per tap and row. A pixel whose input
 * column lies past the image's left or right edge is masked out (to columns: written as 0; back to
 * the image: not added), with one mask of the panel's pixels per kx, built first in `masks`.
 */
@inline function transferSame(
  x: usize,
  H: i32,
  W: i32,
  KH: i32,
  KW: i32,
  PT: i32,
  PL: i32,
  c0: i32,
  r0: i32,
  r1: i32,
  j0: i32,
  j1: i32,
  col: usize,
  width: i32,
  toCol: bool,
  masks: usize,
): void {
  const plane = H * W,
    pixels = j1 - j0,
    maskRow = (<usize>((pixels + 3) & ~3)) << 2;
  for (let kx = 0; kx < KW; kx++) {
    const mask = masks + <usize>kx * maskRow;
    for (let j = 0, ox = j0 % W; j < pixels; j++) {
      const ix = ox + kx - PL;
      store<i32>(mask + ((<usize>j) << 2), ix >= 0 && ix < W ? -1 : 0);
      if (++ox == W) ox = 0;
    }
  }
  let kx = r0 % KW,
    ky = (r0 / KW) % KH,
    c = c0 + r0 / (KW * KH);
  for (let r = r0; r < r1; r++) {
    const image = x + ((<usize>c * plane) << 2);
    const row = col + ((<usize>(r - r0) * width) << 2);
    const delta = (ky - PT) * W + (kx - PL);
    // [lo, hi): the pixels whose input row exists; [copyLo, copyHi) within it: those whose read
    // stays inside the plane (the ones left out lie past an edge)
    const lo = min(j1, max(j0, (PT - ky) * W)),
      hi = max(lo, min(j1, (H + PT - ky) * W));
    const copyLo = min(hi, max(lo, -delta)),
      copyHi = max(copyLo, min(hi, plane - delta));
    const at = (<usize>(copyLo - j0)) << 2,
      mask = masks + <usize>kx * maskRow + at;
    if (toCol) {
      zero(row, copyLo - j0);
      maskedCopy(row + at, image + ((<usize>(copyLo + delta)) << 2), mask, copyHi - copyLo);
      zero(row + ((<usize>(copyHi - j0)) << 2), j1 - copyHi);
    } else {
      maskedAdd(image + ((<usize>(copyLo + delta)) << 2), row + at, mask, copyHi - copyLo);
    }
    if (++kx == KW) {
      kx = 0;
      if (++ky == KH) {
        ky = 0;
        c++;
      }
    }
  }
}

/** to[i] = from[i] where mask[i] is all ones, else 0, for n floats, four at a time. */
@inline function maskedCopy(to: usize, from: usize, mask: usize, n: i32): void {
  const end = to + ((<usize>n) << 2);
  for (; to + 16 <= end; to += 16, from += 16, mask += 16) v128.store(to, v128.and(v128.load(from), v128.load(mask)));
  for (; to < end; to += 4, from += 4, mask += 4) store<i32>(to, load<i32>(from) & load<i32>(mask));
}

/** to[i] += from[i] where mask[i] is all ones, for n floats, four at a time. */
@inline function maskedAdd(to: usize, from: usize, mask: usize, n: i32): void {
  const end = from + ((<usize>n) << 2);
  for (; from + 16 <= end; to += 16, from += 16, mask += 16)
    v128.store(to, f32x4.add(v128.load(to), v128.and(v128.load(from), v128.load(mask))));
  for (; from < end; to += 4, from += 4, mask += 4) store<f32>(to, load<f32>(to) + reinterpret<f32>(load<i32>(from) & load<i32>(mask)));
}

/** Writes n zero floats, four at a time. The segments are short (a row or two of a small map): a
 * loop beats memory.fill, which V8 runs as a call. */
@inline function zero(at: usize, n: i32): void {
  const end = at + ((<usize>max(0, n)) << 2);
  for (; at + 16 <= end; at += 16) v128.store(at, i32x4.splat(0));
  for (; at < end; at += 4) store<f32>(at, 0);
}

function col2im(col: usize, width: i32, g: usize, group: i32, r0: i32, r1: i32, j0: i32, j1: i32, dx: usize, scratch: usize): void {
  transfer(dx, g, group, r0, r1, j0, j1, col, width, false, scratch);
}

/**
 * y = conv(x) + bias for the output columns J0…J1 of the whole batch, numbered image by image
 * (J = n·OH·OW + pixel), `chunk` columns at a time: a panel may span several small images, so
 * small feature maps still make wide GEMMs. The GEMM writes a panel of outputs that is then spread
 * to each image's channels. `work` holds the packed weights of every group (G·packedSize(K/G,
 * taps) floats), one im2col panel (taps·chunk) and one output panel ((K/G)·chunk).
 */
export function conv2dForward(
  g: usize,
  x: usize,
  w: usize,
  bias: usize,
  y: usize,
  J0: i32,
  J1: i32,
  chunk: i32,
  work: usize,
  scratch: usize,
): void {
  const C = geo(g, IN_C),
    K = geo(g, OUT_C),
    G = geo(g, GROUPS);
  const ohw = geo(g, OUT_H) * geo(g, OUT_W),
    inPlane = geo(g, IN_H) * geo(g, IN_W);
  const kg = K / G,
    taps = (C / G) * geo(g, K_H) * geo(g, K_W);
  const packed = (<usize>packedSize(kg, taps)) << 2;
  for (let group = 0; group < G; group++) packWhole(w + ((<usize>group * kg * taps) << 2), taps, 1, kg, taps, work + <usize>group * packed);
  const col = work + <usize>G * packed;
  const out = col + ((<usize>taps * chunk) << 2);
  for (let group = 0; group < G; group++) {
    for (let p0 = J0; p0 < J1; p0 += chunk) {
      const p1 = min(J1, p0 + chunk),
        width = p1 - p0;
      for (let n = p0 / ohw; n * ohw < p1; n++) {
        // the images this panel touches
        const a = max(p0, n * ohw) - n * ohw,
          b = min(p1, (n + 1) * ohw) - n * ohw;
        transfer(
          x + ((<usize>n * C * inPlane) << 2),
          g,
          group,
          0,
          taps,
          a,
          b,
          col + ((<usize>(n * ohw + a - p0)) << 2),
          width,
          true,
          scratch,
        );
      }
      gemmPacked(kg, width, taps, 1, work + <usize>group * packed, col, width, 1, 0, out, width, scratch);
      for (let n = p0 / ohw; n * ohw < p1; n++) {
        const a = max(p0, n * ohw) - n * ohw,
          b = min(p1, (n + 1) * ohw) - n * ohw;
        for (let k = 0; k < kg; k++) {
          const value = bias ? load<f32>(bias + ((<usize>(group * kg + k)) << 2)) : 0;
          const src = out + ((<usize>(k * width + n * ohw + a - p0)) << 2);
          const dst = y + ((<usize>((n * K + group * kg + k) * ohw + a)) << 2);
          const vb = f32x4.splat(value);
          let j = 0;
          for (; j + 4 <= b - a; j += 4) v128.store(dst + ((<usize>j) << 2), f32x4.add(v128.load(src + ((<usize>j) << 2)), vb));
          for (; j < b - a; j++) store<f32>(dst + ((<usize>j) << 2), load<f32>(src + ((<usize>j) << 2)) + value);
        }
      }
    }
  }
}

/** dx[:, channels c0…c1) = convᵀ(dy) for every image; c0 and c1 lie in one group. Panels of
 * `chunk` columns: pixels of one image where a map has at least that many, else whole images,
 * their output gradients gathered first (so small maps still make wide GEMMs). `work` holds the
 * packed transposed weights (packedSize(rows, K/G) floats, rows = (c1−c0)·KH·KW), one panel of
 * rows·chunk floats and one of gathered output gradients, (K/G)·chunk. */
export function conv2dBackwardData(
  g: usize,
  dy: usize,
  w: usize,
  dx: usize,
  c0: i32,
  c1: i32,
  chunk: i32,
  work: usize,
  scratch: usize,
): void {
  const N = geo(g, BATCH),
    C = geo(g, IN_C),
    K = geo(g, OUT_C),
    G = geo(g, GROUPS);
  const ohw = geo(g, OUT_H) * geo(g, OUT_W),
    inPlane = geo(g, IN_H) * geo(g, IN_W),
    kk = geo(g, K_H) * geo(g, K_W);
  const cg = C / G,
    kg = K / G,
    taps = cg * kk;
  const group = c0 / cg,
    r0 = (c0 - group * cg) * kk,
    r1 = (c1 - group * cg) * kk;
  // Wᵀ restricted to taps r0…r1: A(r, k) = W[k][r]
  packWhole(w + ((<usize>(group * kg * taps + r0)) << 2), 1, taps, r1 - r0, kg, work);
  const col = work + ((<usize>packedSize(r1 - r0, kg)) << 2);
  const grads = col + ((<usize>(r1 - r0) * chunk) << 2);
  const images = chunk / ohw;
  for (let n0 = 0; n0 < N; n0 += max(1, images)) {
    const n1 = images > 1 ? min(N, n0 + images) : n0 + 1;
    for (let n = n0; n < n1; n++) memory.fill(dx + ((<usize>(n * C + c0) * inPlane) << 2), 0, (<usize>(c1 - c0) * inPlane) << 2);
    if (images > 1) {
      const width = (n1 - n0) * ohw;
      for (let n = n0; n < n1; n++) {
        for (let k = 0; k < kg; k++) {
          memory.copy(
            grads + ((<usize>(k * width + (n - n0) * ohw)) << 2),
            dy + ((<usize>(n * K + group * kg + k) * ohw) << 2),
            (<usize>ohw) << 2,
          );
        }
      }
      // dcol[r][j] = Σ_k W[k][r] · dy[k][j]
      gemmPacked(r1 - r0, width, kg, 1, work, grads, width, 1, 0, col, width, scratch);
      for (let n = n0; n < n1; n++)
        col2im(col + ((<usize>(n - n0) * ohw) << 2), width, g, group, r0, r1, 0, ohw, dx + ((<usize>n * C * inPlane) << 2), scratch);
      continue;
    }
    const dyg = dy + ((<usize>(n0 * K + group * kg) * ohw) << 2);
    for (let p0 = 0; p0 < ohw; p0 += chunk) {
      const p1 = min(ohw, p0 + chunk),
        width = p1 - p0;
      gemmPacked(r1 - r0, width, kg, 1, work, dyg + ((<usize>p0) << 2), ohw, 1, 0, col, width, scratch);
      col2im(col, width, g, group, r0, r1, p0, p1, dx + ((<usize>n0 * C * inPlane) << 2), scratch);
    }
  }
}

/**
 * dw[:, taps r0…r1) = Σ over the batch of dy · im2col(x)ᵀ for every group (taps index within a group),
 * over columns (image, pixel) of the whole batch, `chunk` at a time. With chunk ≤ OH·OW a panel
 * lies in one image and the GEMM reads dy where it is; otherwise a panel spans several small images
 * (so the GEMM's inner dimension stays long) and their output gradients are gathered first. `work`
 * holds one im2col panel ((r1−r0)·chunk) and one panel of output gradients ((K/G)·chunk).
 */
export function conv2dBackwardFilter(
  g: usize,
  x: usize,
  dy: usize,
  dw: usize,
  r0: i32,
  r1: i32,
  chunk: i32,
  work: usize,
  scratch: usize,
): void {
  const N = geo(g, BATCH),
    C = geo(g, IN_C),
    K = geo(g, OUT_C),
    G = geo(g, GROUPS);
  const ohw = geo(g, OUT_H) * geo(g, OUT_W),
    inPlane = geo(g, IN_H) * geo(g, IN_W);
  const kg = K / G,
    taps = (C / G) * geo(g, K_H) * geo(g, K_W);
  const col = work,
    grads = work + ((<usize>(r1 - r0) * chunk) << 2);
  const total = N * ohw;
  for (let group = 0; group < G; group++) {
    const dwg = dw + ((<usize>(group * kg * taps + r0)) << 2);
    if (chunk <= ohw) {
      for (let n = 0; n < N; n++) {
        for (let p0 = 0; p0 < ohw; p0 += chunk) {
          const p1 = min(ohw, p0 + chunk),
            width = p1 - p0;
          transfer(x + ((<usize>n * C * inPlane) << 2), g, group, r0, r1, p0, p1, col, width, true, scratch);
          const dyg = dy + ((<usize>(n * K + group * kg) * ohw + p0) << 2);
          gemm(kg, r1 - r0, width, 1, dyg, ohw, 1, col, 1, width, n == 0 && p0 == 0 ? 0 : 1, dwg, taps, scratch);
        }
      }
      continue;
    }
    for (let p0 = 0; p0 < total; p0 += chunk) {
      const p1 = min(total, p0 + chunk),
        width = p1 - p0;
      for (let n = p0 / ohw; n * ohw < p1; n++) {
        const a = max(p0, n * ohw) - n * ohw,
          b = min(p1, (n + 1) * ohw) - n * ohw;
        const offset = n * ohw + a - p0;
        transfer(x + ((<usize>n * C * inPlane) << 2), g, group, r0, r1, a, b, col + ((<usize>offset) << 2), width, true, scratch);
        for (let k = 0; k < kg; k++) {
          memory.copy(
            grads + ((<usize>(k * width + offset)) << 2),
            dy + ((<usize>((n * K + group * kg + k) * ohw + a)) << 2),
            (<usize>(b - a)) << 2,
          );
        }
      }
      gemm(kg, r1 - r0, width, 1, grads, width, 1, col, 1, width, p0 == 0 ? 0 : 1, dwg, taps, scratch);
    }
  }
}

/** db[k0…k1) = Σ over images and pixels of dy: each image's plane summed four lanes at a time,
 * the planes' sums in f64. */
export function biasBackward(dy: usize, db: usize, batch: i32, channels: i32, spatial: i32, k0: i32, k1: i32): void {
  for (let k = k0; k < k1; k++) {
    let sum: f64 = 0;
    for (let n = 0; n < batch; n++) {
      const row = dy + ((<usize>(n * channels + k) * spatial) << 2);
      let lanes = f32x4.splat(0);
      let j = 0;
      for (; j + 4 <= spatial; j += 4) lanes = f32x4.add(lanes, v128.load(row + ((<usize>j) << 2)));
      let plane = f32x4.extract_lane(lanes, 0) + f32x4.extract_lane(lanes, 1) + f32x4.extract_lane(lanes, 2) + f32x4.extract_lane(lanes, 3);
      for (; j < spatial; j++) plane += load<f32>(row + ((<usize>j) << 2));
      sum += <f64>plane;
    }
    store<f32>(db + ((<usize>k) << 2), <f32>sum);
  }
}

/**
 * The native (BLAS) route's transfers, for images n0…n1 of one group: with `toCol`, im2col rows
 * r0…r1 (taps within the group) into `col`, each image's OH·OW pixels side by side in rows of
 * (n1−n0)·OH·OW; without, the adjoint: dx's planes of the channels of rows r0…r1 (which must be
 * whole channels) are zeroed, then the columns added back into them.
 */
export function convColumns(
  g: usize,
  x: usize,
  group: i32,
  n0: i32,
  n1: i32,
  r0: i32,
  r1: i32,
  col: usize,
  toCol: bool,
  masks: usize,
): void {
  const C = geo(g, IN_C),
    inPlane = geo(g, IN_H) * geo(g, IN_W),
    ohw = geo(g, OUT_H) * geo(g, OUT_W),
    kk = geo(g, K_H) * geo(g, K_W);
  const cg = C / geo(g, GROUPS),
    width = (n1 - n0) * ohw;
  for (let n = n0; n < n1; n++) {
    const image = x + ((<usize>n * C * inPlane) << 2);
    if (!toCol) {
      const c0 = group * cg + r0 / kk;
      memory.fill(image + ((<usize>c0 * inPlane) << 2), 0, (<usize>((r1 - r0) / kk) * inPlane) << 2);
    }
    transfer(image, g, group, r0, r1, 0, ohw, col + ((<usize>r0 * width + (n - n0) * ohw) << 2), width, toCol, masks);
  }
}

/** y[n][group·K/G + k][p] = out[k][(n − n0)·OH·OW + p] (+ bias) for k in k0…k1: a GEMM's panel of
 * images side by side, spread back to NCHW. */
export function spreadColumns(g: usize, out: usize, y: usize, bias: usize, group: i32, n0: i32, n1: i32, k0: i32, k1: i32): void {
  const K = geo(g, OUT_C),
    kg = K / geo(g, GROUPS),
    ohw = geo(g, OUT_H) * geo(g, OUT_W);
  const width = (n1 - n0) * ohw;
  for (let k = k0; k < k1; k++) {
    const value = bias ? load<f32>(bias + ((<usize>(group * kg + k)) << 2)) : 0;
    const vb = f32x4.splat(value);
    for (let n = n0; n < n1; n++) {
      const src = out + ((<usize>(k * width + (n - n0) * ohw)) << 2);
      const dst = y + ((<usize>((n * K + group * kg + k) * ohw)) << 2);
      let j = 0;
      for (; j + 4 <= ohw; j += 4) v128.store(dst + ((<usize>j) << 2), f32x4.add(v128.load(src + ((<usize>j) << 2)), vb));
      for (; j < ohw; j++) store<f32>(dst + ((<usize>j) << 2), load<f32>(src + ((<usize>j) << 2)) + value);
    }
  }
}

/** grads[k][(n − n0)·OH·OW + p] = dy[n][group·K/G + k][p] for k in k0…k1: the adjoint layout. */
export function gatherColumns(g: usize, dy: usize, grads: usize, group: i32, n0: i32, n1: i32, k0: i32, k1: i32): void {
  const K = geo(g, OUT_C),
    kg = K / geo(g, GROUPS),
    ohw = geo(g, OUT_H) * geo(g, OUT_W);
  const width = (n1 - n0) * ohw;
  for (let k = k0; k < k1; k++) {
    for (let n = n0; n < n1; n++) {
      memory.copy(
        grads + ((<usize>(k * width + (n - n0) * ohw)) << 2),
        dy + ((<usize>((n * K + group * kg + k) * ohw)) << 2),
        (<usize>ohw) << 2,
      );
    }
  }
}
