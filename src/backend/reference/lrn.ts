/** Local response normalization across channels (Krizhevsky et al. 2012, section 3.3). */
import type { FloatArray } from '../backend.js';
import type { LrnParams } from '../kernels.js';

/** Calls `visit(index, windowStart, windowEnd)` per element with the channel window clipped to the
 * tensor; indices step by `spatial` across channels. */
function forEachElement(p: LrnParams, visit: (index: number, first: number, last: number) => void): void {
  const half = (p.size - 1) / 2;
  for (let n = 0; n < p.batch; n++) {
    for (let c = 0; c < p.channels; c++) {
      const lo = Math.max(0, c - half),
        hi = Math.min(p.channels - 1, c + half);
      for (let s = 0; s < p.spatial; s++) {
        const base = n * p.channels * p.spatial + s;
        visit(base + c * p.spatial, base + lo * p.spatial, base + hi * p.spatial);
      }
    }
  }
}

export function lrnForward(p: LrnParams, b: { x: FloatArray; y: FloatArray; scale: FloatArray }): void {
  forEachElement(p, (i, first, last) => {
    let sum = 0;
    for (let j = first; j <= last; j += p.spatial) sum += b.x[j]! * b.x[j]!;
    b.scale[i] = p.k + p.alpha * sum;
    b.y[i] = b.x[i]! * Math.pow(b.scale[i]!, -p.beta);
  });
}

/** dx_i = dy_i·scale_i^−β − 2αβ·x_i·Σ_{j: i ∈ window(j)} dy_j·y_j / scale_j; windows are symmetric,
 * so the j that see i are the j that i sees. */
export function lrnBackward(p: LrnParams, b: { x: FloatArray; y: FloatArray; scale: FloatArray; dy: FloatArray; dx: FloatArray }): void {
  forEachElement(p, (i, first, last) => {
    let sum = 0;
    for (let j = first; j <= last; j += p.spatial) sum += (b.dy[j]! * b.y[j]!) / b.scale[j]!;
    b.dx[i] = b.dy[i]! * Math.pow(b.scale[i]!, -p.beta) - 2 * p.alpha * p.beta * b.x[i]! * sum;
  });
}
