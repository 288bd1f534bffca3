// Packed SGEMM (GotoBLAS structure): C = alpha·A·B + beta·C with a 4×8 register micro-kernel.
// A and B are addressed through row and column strides (in elements), so transposed operands
// cost nothing. All pointers are byte offsets into linear memory; sizes are in elements.

// Cache blocking: a packed A block (MC×KC) stays in L2, a packed B panel (KC×8) in L1.
export const MC: i32 = 64;
export const KC: i32 = 256;
export const NC: i32 = 1024;
/** Floats of scratch one gemm call needs: packed A, packed B, one edge tile. */
export const GEMM_SCRATCH: i32 = MC * KC + KC * NC + 32;

/** a·b + c, fused where the engine has relaxed SIMD. */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Packs rows i0…i0+mc of A, columns p0…p0+kc, into panels of 4 rows (zero-padded). */
function packA(a: usize, rsa: i32, csa: i32, i0: i32, p0: i32, mc: i32, kc: i32, out: usize): void {
  for (let ip = 0; ip < mc; ip += 4) {
    const rows = min(4, mc - ip);
    let p = 0;
    if (rows == 4 && csa == 1) {
      // rows contiguous along k: transpose 4×4 blocks
      const row = a + ((<usize>(i0 + ip) * rsa + p0) << 2),
        step = (<usize>rsa) << 2;
      for (; p + 4 <= kc; p += 4) {
        const at = row + ((<usize>p) << 2);
        transpose4(v128.load(at), v128.load(at + step), v128.load(at + 2 * step), v128.load(at + 3 * step), out, 16);
        out += 64;
      }
    }
    for (; p < kc; p++) {
      const col = a + ((<usize>(p0 + p) * csa) << 2);
      for (let r = 0; r < 4; r++) {
        store<f32>(out, r < rows ? load<f32>(col + ((<usize>(i0 + ip + r) * rsa) << 2)) : 0);
        out += 4;
      }
    }
  }
}

/** Stores the transpose of the 4×4 block with rows r0…r3: its row i (the column i of the block)
 * at out + i·stride bytes. */
@inline function transpose4(r0: v128, r1: v128, r2: v128, r3: v128, out: usize, stride: usize): void {
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5),
    t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5),
    t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(out, i64x2.shuffle(t0, t2, 0, 2));
  v128.store(out + stride, i64x2.shuffle(t0, t2, 1, 3));
  v128.store(out + 2 * stride, i64x2.shuffle(t1, t3, 0, 2));
  v128.store(out + 3 * stride, i64x2.shuffle(t1, t3, 1, 3));
}

/** Packs rows p0…p0+kc of B, columns j0…j0+nc, into panels of 8 columns (zero-padded). */
function packB(b: usize, rsb: i32, csb: i32, p0: i32, j0: i32, kc: i32, nc: i32, out: usize): void {
  for (let jp = 0; jp < nc; jp += 8) {
    const cols = min(8, nc - jp);
    if (cols == 8 && csb == 1) {
      let src = b + ((<usize>p0 * rsb + j0 + jp) << 2);
      const step = (<usize>rsb) << 2;
      for (let p = 0; p < kc; p++) {
        v128.store(out, v128.load(src));
        v128.store(out + 16, v128.load(src + 16));
        out += 32;
        src += step;
      }
      continue;
    }
    let p = 0;
    if (cols == 8 && rsb == 1) {
      // columns contiguous along k: transpose two 4×4 blocks
      const col = b + ((<usize>(j0 + jp) * csb + p0) << 2),
        step = (<usize>csb) << 2;
      for (; p + 4 <= kc; p += 4) {
        const at = col + ((<usize>p) << 2);
        transpose4(v128.load(at), v128.load(at + step), v128.load(at + 2 * step), v128.load(at + 3 * step), out, 32);
        transpose4(v128.load(at + 4 * step), v128.load(at + 5 * step), v128.load(at + 6 * step), v128.load(at + 7 * step), out + 16, 32);
        out += 128;
      }
    }
    for (; p < kc; p++) {
      const row = b + ((<usize>(p0 + p) * rsb) << 2);
      for (let c = 0; c < 8; c++) {
        store<f32>(out, c < cols ? load<f32>(row + ((<usize>(j0 + jp + c) * csb) << 2)) : 0);
        out += 4;
      }
    }
  }
}

@inline function addRow(c: usize, acc0: v128, acc1: v128): void {
  v128.store(c, f32x4.add(v128.load(c), acc0));
  v128.store(c + 16, f32x4.add(v128.load(c + 16), acc1));
}

/** The micro-kernel: C tile (rows×cols ≤ 4×8) += alpha · (4-row A panel · 8-column B panel), or =
 * with `overwrite` (C is then not read). A partial tile goes through `tile` (32 floats) so only its
 * valid part of C is touched. */
function kernel4x8(
  kc: i32,
  ap: usize,
  bp: usize,
  alpha: f32,
  c: usize,
  ldc: i32,
  rows: i32,
  cols: i32,
  tile: usize,
  overwrite: bool,
): void {
  let c00 = f32x4.splat(0),
    c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0),
    c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0),
    c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0),
    c31 = f32x4.splat(0);
  const end = bp + ((<usize>kc) << 5);
  while (bp < end) {
    const b0 = v128.load(bp),
      b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    ap += 16;
    bp += 32;
  }
  if (alpha != 1) {
    const va = f32x4.splat(alpha);
    c00 = f32x4.mul(c00, va);
    c01 = f32x4.mul(c01, va);
    c10 = f32x4.mul(c10, va);
    c11 = f32x4.mul(c11, va);
    c20 = f32x4.mul(c20, va);
    c21 = f32x4.mul(c21, va);
    c30 = f32x4.mul(c30, va);
    c31 = f32x4.mul(c31, va);
  }
  const ld = (<usize>ldc) << 2;
  if (rows == 4 && cols == 8 && overwrite) {
    v128.store(c, c00);
    v128.store(c + 16, c01);
    v128.store(c + ld, c10);
    v128.store(c + ld + 16, c11);
    v128.store(c + 2 * ld, c20);
    v128.store(c + 2 * ld + 16, c21);
    v128.store(c + 3 * ld, c30);
    v128.store(c + 3 * ld + 16, c31);
    return;
  }
  if (rows == 4 && cols == 8) {
    addRow(c, c00, c01);
    addRow(c + ld, c10, c11);
    addRow(c + 2 * ld, c20, c21);
    addRow(c + 3 * ld, c30, c31);
    return;
  }
  v128.store(tile, c00);
  v128.store(tile + 16, c01);
  v128.store(tile + 32, c10);
  v128.store(tile + 48, c11);
  v128.store(tile + 64, c20);
  v128.store(tile + 80, c21);
  v128.store(tile + 96, c30);
  v128.store(tile + 112, c31);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const at = c + <usize>r * ld + ((<usize>j) << 2);
      const value = load<f32>(tile + ((<usize>(r * 8 + j)) << 2));
      store<f32>(at, overwrite ? value : load<f32>(at) + value);
    }
  }
}

/** C(M×N, row stride ldc) = alpha·A·B + beta·C; A(i,k) at a[i·rsa + k·csa], B(k,j) at b[k·rsb + j·csb].
 * `scratch` holds GEMM_SCRATCH floats. beta = 0 overwrites C without reading it. */
export function gemm(
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  a: usize,
  rsa: i32,
  csa: i32,
  b: usize,
  rsb: i32,
  csb: i32,
  beta: f32,
  c: usize,
  ldc: i32,
  scratch: usize,
): void {
  multiply(M, N, K, alpha, a, rsa, csa, 0, b, rsb, csb, beta, c, ldc, scratch);
}

/** Floats that `packWhole` writes for an M×K matrix. */
export function packedSize(M: i32, K: i32): i32 {
  return ((M + 3) & ~3) * K;
}

/** Packs all of A (M×K) once, block by block of KC, so a GEMM repeated over many B (a convolution's
 * images and pixel panels) does not pack its weights again. */
export function packWhole(a: usize, rsa: i32, csa: i32, M: i32, K: i32, out: usize): void {
  const rows = (M + 3) & ~3;
  for (let p0 = 0; p0 < K; p0 += KC) {
    packA(a, rsa, csa, 0, p0, M, min(KC, K - p0), out + ((<usize>p0 * rows) << 2));
  }
}

/** gemm with A already packed by `packWhole`. */
export function gemmPacked(
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  packed: usize,
  b: usize,
  rsb: i32,
  csb: i32,
  beta: f32,
  c: usize,
  ldc: i32,
  scratch: usize,
): void {
  multiply(M, N, K, alpha, 0, 0, 0, packed, b, rsb, csb, beta, c, ldc, scratch);
}

/** The GotoBLAS loop nest; A comes either strided (packed block by block) or pre-packed. */
function multiply(
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  a: usize,
  rsa: i32,
  csa: i32,
  packed: usize,
  b: usize,
  rsb: i32,
  csb: i32,
  beta: f32,
  c: usize,
  ldc: i32,
  scratch: usize,
): void {
  const pa = scratch;
  const pb = scratch + ((<usize>(MC * KC)) << 2);
  const tile = pb + ((<usize>(KC * NC)) << 2);
  if (K == 0) {
    scaleBlock(M, N, beta, c, ldc);
    return;
  }
  const rows = (M + 3) & ~3;
  for (let j0 = 0; j0 < N; j0 += NC) {
    const nc = min(NC, N - j0);
    for (let p0 = 0; p0 < K; p0 += KC) {
      const kc = min(KC, K - p0);
      // The first K block overwrites C (beta = 0) or scales it; later ones accumulate onto it.
      const overwrite = p0 == 0 && beta == 0;
      if (p0 == 0 && beta != 0 && beta != 1) scaleBlock(M, nc, beta, c + ((<usize>j0) << 2), ldc);
      packB(b, rsb, csb, p0, j0, kc, nc, pb);
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = min(MC, M - i0);
        let block = pa;
        if (packed) block = packed + ((<usize>p0 * rows + <usize>i0 * kc) << 2);
        else packA(a, rsa, csa, i0, p0, mc, kc, pa);
        for (let jp = 0; jp < nc; jp += 8) {
          for (let ip = 0; ip < mc; ip += 4) {
            const cij = c + ((<usize>(i0 + ip) * ldc + j0 + jp) << 2);
            kernel4x8(
              kc,
              block + ((<usize>(ip * kc)) << 2),
              pb + ((<usize>(jp * kc)) << 2),
              alpha,
              cij,
              ldc,
              min(4, mc - ip),
              min(8, nc - jp),
              tile,
              overwrite,
            );
          }
        }
      }
    }
  }
}

/** C = beta·C (beta = 0 writes zeros without reading). */
function scaleBlock(M: i32, N: i32, beta: f32, c: usize, ldc: i32): void {
  for (let i = 0; i < M; i++) {
    const row = c + ((<usize>(i * ldc)) << 2);
    for (let j = 0; j < N; j++) {
      const at = row + ((<usize>j) << 2);
      store<f32>(at, beta == 0 ? 0 : beta * load<f32>(at));
    }
  }
}
