// Local response normalization across channels, four pixels at a time: the channel window's sum
// of squares slides (add the square entering, subtract the one leaving) instead of being re-summed.

@inline function powNegBeta(s: v128, beta: f32): v128 {
  // s^−0.75 = 1 / (√s · ⁴√s): the paper's β, without a scalar pow per element.
  if (beta == 0.75) {
    const r = f32x4.sqrt(s);
    return f32x4.div(f32x4.splat(1), f32x4.mul(r, f32x4.sqrt(r)));
  }
  return f32x4(
    Mathf.pow(f32x4.extract_lane(s, 0), -beta), Mathf.pow(f32x4.extract_lane(s, 1), -beta),
    Mathf.pow(f32x4.extract_lane(s, 2), -beta), Mathf.pow(f32x4.extract_lane(s, 3), -beta),
  );
}

/** Loads four floats at pixel s, or fewer (zero-filled) at the end of a plane. */
@inline function load4(at: usize, s: i32, spatial: i32): v128 {
  if (s + 4 <= spatial) return v128.load(at);
  let v = f32x4.splat(0);
  const n = spatial - s;
  if (n > 0) v = f32x4.replace_lane(v, 0, load<f32>(at));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(at, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(at, 8));
  return v;
}

@inline function store4(at: usize, v: v128, s: i32, spatial: i32): void {
  if (s + 4 <= spatial) { v128.store(at, v); return; }
  const n = spatial - s;
  if (n > 0) store<f32>(at, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(at, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(at, f32x4.extract_lane(v, 2), 8);
}

/** scale = k + α·Σ_window x², y = x·scale^−β, for images n0…n1. */
export function lrnForward(x: usize, y: usize, scale: usize, channels: i32, spatial: i32, size: i32, alpha: f32, beta: f32, k: f32, n0: i32, n1: i32): void {
  const half = (size - 1) / 2;
  const va = f32x4.splat(alpha), vk = f32x4.splat(k);
  const stride = <usize>spatial << 2;
  for (let n = n0; n < n1; n++) {
    const base = (<usize>n * channels * spatial) << 2;
    for (let s = 0; s < spatial; s += 4) {
      const off = base + (<usize>s << 2);
      let sum = f32x4.splat(0);
      for (let c = 0; c < half && c < channels; c++) {
        const v = load4(x + off + <usize>c * stride, s, spatial);
        sum = f32x4.add(sum, f32x4.mul(v, v));
      }
      for (let c = 0; c < channels; c++) {
        if (c + half < channels) {
          const v = load4(x + off + <usize>(c + half) * stride, s, spatial);
          sum = f32x4.add(sum, f32x4.mul(v, v));
        }
        if (c - half - 1 >= 0) {
          const v = load4(x + off + <usize>(c - half - 1) * stride, s, spatial);
          sum = f32x4.sub(sum, f32x4.mul(v, v));
        }
        const at = off + <usize>c * stride;
        const sc = f32x4.add(vk, f32x4.mul(va, sum));
        store4(scale + at, sc, s, spatial);
        store4(y + at, f32x4.mul(load4(x + at, s, spatial), powNegBeta(sc, beta)), s, spatial);
      }
    }
  }
}

/** dx = dy·scale^−β − 2αβ·x·Σ_window dy·y/scale, for images n0…n1. */
export function lrnBackward(x: usize, y: usize, scale: usize, dy: usize, dx: usize, channels: i32, spatial: i32, size: i32, alpha: f32, beta: f32, n0: i32, n1: i32): void {
  const half = (size - 1) / 2;
  const factor = f32x4.splat(-2 * alpha * beta);
  const stride = <usize>spatial << 2;
  for (let n = n0; n < n1; n++) {
    const base = (<usize>n * channels * spatial) << 2;
    for (let s = 0; s < spatial; s += 4) {
      const off = base + (<usize>s << 2);
      let sum = f32x4.splat(0);
      for (let c = 0; c < half && c < channels; c++) {
        const at = off + <usize>c * stride;
        sum = f32x4.add(sum, f32x4.div(f32x4.mul(load4(dy + at, s, spatial), load4(y + at, s, spatial)), load4(scale + at, s, spatial)));
      }
      for (let c = 0; c < channels; c++) {
        if (c + half < channels) {
          const at = off + <usize>(c + half) * stride;
          sum = f32x4.add(sum, f32x4.div(f32x4.mul(load4(dy + at, s, spatial), load4(y + at, s, spatial)), load4(scale + at, s, spatial)));
        }
        if (c - half - 1 >= 0) {
          const at = off + <usize>(c - half - 1) * stride;
          sum = f32x4.sub(sum, f32x4.div(f32x4.mul(load4(dy + at, s, spatial), load4(y + at, s, spatial)), load4(scale + at, s, spatial)));
        }
        const at = off + <usize>c * stride;
        const direct = f32x4.mul(load4(dy + at, s, spatial), powNegBeta(load4(scale + at, s, spatial), beta));
        store4(dx + at, f32x4.add(direct, f32x4.mul(factor, f32x4.mul(load4(x + at, s, spatial), sum))), s, spatial);
      }
    }
  }
}
