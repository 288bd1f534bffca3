/** Direct convolution loops: each output is the sum over its receptive field, as the definition reads. */
import type { FloatArray } from '../backend.js';
import type { Conv2dGeometry } from '../kernels.js';

/** Calls `visit(xIndex, weightIndex, yIndex)` for every input tap of every
 * output that lands inside the input; all three conv kernels are this walk with a different body. */
function forEachTap(g: Conv2dGeometry, visit: (xIndex: number, wIndex: number, yIndex: number) => void): void {
  const icPerGroup = g.inChannels / g.groups;
  const ocPerGroup = g.outChannels / g.groups;
  for (let n = 0; n < g.batch; n++) {
    for (let oc = 0; oc < g.outChannels; oc++) {
      const group = Math.floor(oc / ocPerGroup);
      for (let oy = 0; oy < g.outHeight; oy++) {
        for (let ox = 0; ox < g.outWidth; ox++) {
          const yIndex = ((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox;
          for (let icg = 0; icg < icPerGroup; icg++) {
            const ic = group * icPerGroup + icg;
            for (let ky = 0; ky < g.kernelH; ky++) {
              const iy = oy * g.strideH - g.padTop + ky * g.dilationH;
              if (iy < 0 || iy >= g.inHeight) continue;
              for (let kx = 0; kx < g.kernelW; kx++) {
                const ix = ox * g.strideW - g.padLeft + kx * g.dilationW;
                if (ix < 0 || ix >= g.inWidth) continue;
                const xIndex = ((n * g.inChannels + ic) * g.inHeight + iy) * g.inWidth + ix;
                const wIndex = ((oc * icPerGroup + icg) * g.kernelH + ky) * g.kernelW + kx;
                visit(xIndex, wIndex, yIndex);
              }
            }
          }
        }
      }
    }
  }
}

export function conv2dForward(g: Conv2dGeometry, b: { x: FloatArray; weight: FloatArray; bias?: FloatArray; y: FloatArray }): void {
  const spatial = g.outHeight * g.outWidth;
  for (let i = 0; i < b.y.length; i++) {
    b.y[i] = b.bias ? b.bias[Math.floor(i / spatial) % g.outChannels]! : 0;
  }
  forEachTap(g, (xi, wi, yi) => {
    b.y[yi]! += b.x[xi]! * b.weight[wi]!;
  });
}

export function conv2dBackwardData(g: Conv2dGeometry, b: { dy: FloatArray; weight: FloatArray; dx: FloatArray }): void {
  b.dx.fill(0);
  forEachTap(g, (xi, wi, yi) => {
    b.dx[xi]! += b.weight[wi]! * b.dy[yi]!;
  });
}

export function conv2dBackwardFilter(
  g: Conv2dGeometry,
  b: { x: FloatArray; dy: FloatArray; dweight: FloatArray; dbias?: FloatArray },
): void {
  b.dweight.fill(0);
  forEachTap(g, (xi, wi, yi) => {
    b.dweight[wi]! += b.x[xi]! * b.dy[yi]!;
  });
  if (b.dbias) {
    const dbias = b.dbias;
    dbias.fill(0);
    const spatial = g.outHeight * g.outWidth;
    b.dy.forEach((v, i) => {
      dbias[Math.floor(i / spatial) % g.outChannels]! += v;
    });
  }
}
