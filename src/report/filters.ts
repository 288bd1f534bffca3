/** The paper's Figure 3 as pixels: a run's first-layer filters, for a PNG (plots.ts) or a page's canvas. */

/** Between the blocks of the columns in a filter grid, in unscaled pixels (1 between filters). */
export const COLUMN_GAP = 3;

/**
 * The filters of a [K, C, kh, kw] weight tensor as a grid of tiles, 8-bit RGB pixels (the paper's Figure 3), each
 * scaled to its own range; three input channels are shown as colour, others by their first channel
 * in grey. With `columns`, the filters are split into that many blocks (the paper's two GPUs: the
 * first K/2 feed one column), stacked top to bottom; each block holds ⌈√(K/columns)⌉ tiles a row.
 */
export function filterGrid(
  weight: ArrayLike<number>,
  shape: readonly number[],
  columns = 1,
): { pixels: Uint8Array; width: number; height: number } {
  const [K, C, kh, kw] = shape as [number, number, number, number];
  if (!Number.isInteger(columns) || columns < 1 || K % columns !== 0) throw new Error(`${K} filters do not split into ${columns} columns`);
  const colour = C === 3;
  const perBlock = K / columns,
    perRow = Math.ceil(Math.sqrt(perBlock)),
    rows = Math.ceil(perBlock / perRow),
    gap = 1;
  const blockHeight = rows * (kh + gap) + gap;
  const width = perRow * (kw + gap) + gap,
    height = columns * blockHeight + (columns - 1) * COLUMN_GAP;
  const pixels = new Uint8Array(width * height * 3).fill(255);
  for (let k = 0; k < K; k++) {
    const base = k * C * kh * kw;
    let lo = Infinity,
      hi = -Infinity;
    for (let i = 0; i < C * kh * kw; i++) {
      lo = Math.min(lo, weight[base + i]!);
      hi = Math.max(hi, weight[base + i]!);
    }
    const block = Math.floor(k / perBlock),
      place = k % perBlock;
    const x0 = gap + (place % perRow) * (kw + gap),
      y0 = block * (blockHeight + COLUMN_GAP) + gap + Math.floor(place / perRow) * (kh + gap);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let c = 0; c < 3; c++) {
          const v = weight[base + (colour ? c : 0) * kh * kw + y * kw + x]!;
          pixels[((y0 + y) * width + x0 + x) * 3 + c] = Math.round((255 * (v - lo)) / (hi - lo || 1));
        }
      }
    }
  }
  return { pixels, width, height };
}
