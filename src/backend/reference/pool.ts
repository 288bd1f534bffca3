/** Max pooling (padded taps are skipped, never win) and adaptive average pooling. */
import type { FloatArray } from '../backend.js';
import type { AdaptivePoolGeometry, Pool2dGeometry } from '../kernels.js';

/** Index into x of the window's maximum by PyTorch's rule: the first tap, then every tap that is
 * greater or NaN (so the last NaN wins); −1 if the window holds no input element. */
function windowArgmax(g: Pool2dGeometry, x: FloatArray, plane: number, oy: number, ox: number): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let ky = 0; ky < g.kernelH; ky++) {
    const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
    if (iy < 0 || iy >= g.inHeight) continue;
    for (let kx = 0; kx < g.kernelW; kx++) {
      const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
      if (ix < 0 || ix >= g.inWidth) continue;
      const index = (plane * g.inHeight + iy) * g.inWidth + ix;
      const value = x[index]!;
      if (best < 0) best = index;
      if (value > bestValue || Number.isNaN(value)) {
        best = index;
        bestValue = value;
      }
    }
  }
  return best;
}

function forEachWindow(g: Pool2dGeometry, visit: (plane: number, oy: number, ox: number, yIndex: number) => void): void {
  for (let plane = 0; plane < g.batch * g.channels; plane++) {
    for (let oy = 0; oy < g.outHeight; oy++) {
      for (let ox = 0; ox < g.outWidth; ox++) visit(plane, oy, ox, (plane * g.outHeight + oy) * g.outWidth + ox);
    }
  }
}

export function maxpool2dForward(g: Pool2dGeometry, b: { x: FloatArray; y: FloatArray }): void {
  forEachWindow(g, (plane, oy, ox, yi) => {
    const at = windowArgmax(g, b.x, plane, oy, ox);
    b.y[yi] = at < 0 ? -Infinity : b.x[at]!;
  });
}

export function maxpool2dBackward(g: Pool2dGeometry, b: { x: FloatArray; dy: FloatArray; dx: FloatArray }): void {
  b.dx.fill(0);
  forEachWindow(g, (plane, oy, ox, yi) => {
    const at = windowArgmax(g, b.x, plane, oy, ox);
    if (at >= 0) b.dx[at]! += b.dy[yi]!;
  });
}

/** PyTorch's adaptive bins: output cell i covers [floor(i·in/out), ceil((i+1)·in/out)). */
function bin(i: number, inSize: number, outSize: number): [number, number] {
  return [Math.floor((i * inSize) / outSize), Math.ceil(((i + 1) * inSize) / outSize)];
}

function forEachAdaptiveCell(g: AdaptivePoolGeometry, visit: (xIndex: number, yIndex: number, count: number) => void): void {
  for (let plane = 0; plane < g.batch * g.channels; plane++) {
    for (let oy = 0; oy < g.outHeight; oy++) {
      const [y0, y1] = bin(oy, g.inHeight, g.outHeight);
      for (let ox = 0; ox < g.outWidth; ox++) {
        const [x0, x1] = bin(ox, g.inWidth, g.outWidth);
        const yIndex = (plane * g.outHeight + oy) * g.outWidth + ox;
        const count = (y1 - y0) * (x1 - x0);
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) visit((plane * g.inHeight + iy) * g.inWidth + ix, yIndex, count);
        }
      }
    }
  }
}

export function adaptiveAvgpool2dForward(g: AdaptivePoolGeometry, b: { x: FloatArray; y: FloatArray }): void {
  b.y.fill(0);
  forEachAdaptiveCell(g, (xi, yi, count) => {
    b.y[yi]! += b.x[xi]! / count;
  });
}

export function adaptiveAvgpool2dBackward(g: AdaptivePoolGeometry, b: { dy: FloatArray; dx: FloatArray }): void {
  b.dx.fill(0);
  forEachAdaptiveCell(g, (xi, yi, count) => {
    b.dx[xi]! += b.dy[yi]! / count;
  });
}
