// Max pooling over a range of planes (image × channel); padded taps never win.
const BATCH = 0, CHANNELS = 1, IN_H = 2, IN_W = 3, OUT_H = 4, OUT_W = 5, K_H = 6, K_W = 7;
const STRIDE_H = 8, STRIDE_W = 9, PAD_T = 10, PAD_L = 11, DIL_H = 12, DIL_W = 13;

@inline function geo(g: usize, field: i32): i32 {
  return load<i32>(g + (<usize>field << 2));
}

/** Offset (in floats, within the plane) of the window's first maximum (NaN wins), or −1. */
function argmax(g: usize, plane: usize, oy: i32, ox: i32): i32 {
  const H = geo(g, IN_H), W = geo(g, IN_W), KH = geo(g, K_H), KW = geo(g, K_W);
  const y0 = oy * geo(g, STRIDE_H) - geo(g, PAD_T), x0 = ox * geo(g, STRIDE_W) - geo(g, PAD_L);
  const DH = geo(g, DIL_H), DW = geo(g, DIL_W);
  let best = -1;
  let bestValue: f32 = -Infinity;
  for (let ky = 0; ky < KH; ky++) {
    const iy = y0 + ky * DH;
    if (iy < 0 || iy >= H) continue;
    for (let kx = 0; kx < KW; kx++) {
      const ix = x0 + kx * DW;
      if (ix < 0 || ix >= W) continue;
      const at = iy * W + ix;
      const v = load<f32>(plane + (<usize>at << 2));
      if (best < 0 || v > bestValue || isNaN(v)) {
        best = at;
        bestValue = v;
        if (isNaN(v)) return best;
      }
    }
  }
  return best;
}

export function maxpool2dForward(g: usize, x: usize, y: usize, p0: i32, p1: i32): void {
  const inPlane = geo(g, IN_H) * geo(g, IN_W), OH = geo(g, OUT_H), OW = geo(g, OUT_W);
  for (let p = p0; p < p1; p++) {
    const plane = x + ((<usize>p * inPlane) << 2);
    let out = y + ((<usize>p * OH * OW) << 2);
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const at = argmax(g, plane, oy, ox);
        store<f32>(out, at < 0 ? -Infinity : load<f32>(plane + (<usize>at << 2)));
        out += 4;
      }
    }
  }
}

export function maxpool2dBackward(g: usize, x: usize, dy: usize, dx: usize, p0: i32, p1: i32): void {
  const inPlane = geo(g, IN_H) * geo(g, IN_W), OH = geo(g, OUT_H), OW = geo(g, OUT_W);
  for (let p = p0; p < p1; p++) {
    const plane = x + ((<usize>p * inPlane) << 2);
    const dplane = dx + ((<usize>p * inPlane) << 2);
    memory.fill(dplane, 0, <usize>inPlane << 2);
    let grad = dy + ((<usize>p * OH * OW) << 2);
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const at = argmax(g, plane, oy, ox);
        if (at >= 0) {
          const d = dplane + (<usize>at << 2);
          store<f32>(d, load<f32>(d) + load<f32>(grad));
        }
        grad += 4;
      }
    }
  }
}
