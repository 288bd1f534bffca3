// Local response normalization across channels, channel plane by channel plane: the window's sum of
// squares slides from one channel to the next (add the square entering, subtract the one leaving),
// and every pass is a contiguous vector loop over the plane's pixels.

/** s^−β; for the paper's β = 0.75 as 1 / (√s · ⁴√s), without a scalar pow per element. */
@inline function powNegBeta4(s: v128, beta: f32): v128 {
  if (beta == 0.75) {
    const r = f32x4.sqrt(s);
    return f32x4.div(f32x4.splat(1), f32x4.mul(r, f32x4.sqrt(r)));
  }
  return f32x4(
    Mathf.pow(f32x4.extract_lane(s, 0), -beta),
    Mathf.pow(f32x4.extract_lane(s, 1), -beta),
    Mathf.pow(f32x4.extract_lane(s, 2), -beta),
    Mathf.pow(f32x4.extract_lane(s, 3), -beta),
  );
}

@inline function powNegBeta(s: f32, beta: f32): f32 {
  return beta == 0.75 ? 1 / (Mathf.sqrt(s) * Mathf.sqrt(Mathf.sqrt(s))) : Mathf.pow(s, -beta);
}

/** out = base + factor · (a² − b²) over one plane (a or b may be 0: absent). */
function slide(out: usize, base: usize, a: usize, b: usize, factor: f32, spatial: i32): void {
  const f = f32x4.splat(factor);
  let s = 0;
  for (; s + 4 <= spatial; s += 4) {
    const at = (<usize>s) << 2;
    let d = f32x4.splat(0);
    if (a) {
      const v = v128.load(a + at);
      d = f32x4.mul(v, v);
    }
    if (b) {
      const v = v128.load(b + at);
      d = f32x4.sub(d, f32x4.mul(v, v));
    }
    v128.store(out + at, f32x4.add(v128.load(base + at), f32x4.mul(f, d)));
  }
  for (; s < spatial; s++) {
    const at = (<usize>s) << 2;
    let d: f32 = 0;
    if (a) {
      const v = load<f32>(a + at);
      d = v * v;
    }
    if (b) {
      const v = load<f32>(b + at);
      d -= v * v;
    }
    store<f32>(out + at, load<f32>(base + at) + factor * d);
  }
}

/** scale = k + α·Σ_window x², y = x·scale^−β, for images n0…n1. */
export function lrnForward(
  x: usize,
  y: usize,
  scale: usize,
  channels: i32,
  spatial: i32,
  size: i32,
  alpha: f32,
  beta: f32,
  k: f32,
  n0: i32,
  n1: i32,
): void {
  const half = (size - 1) / 2;
  const plane = (<usize>spatial) << 2;
  for (let n = n0; n < n1; n++) {
    const base = <usize>n * channels * plane;
    const X = x + base,
      Y = y + base,
      S = scale + base;
    // scale of channel 0: k + α·Σ_{c ≤ half} x_c², built in place by sliding from k
    for (let s = 0; s < spatial; s++) store<f32>(S + ((<usize>s) << 2), k);
    for (let c = 0; c <= half && c < channels; c++) slide(S, S, X + <usize>c * plane, 0, alpha, spatial);
    for (let c = 1; c < channels; c++) {
      const entering = c + half < channels ? X + <usize>(c + half) * plane : 0;
      const leaving = c - half - 1 >= 0 ? X + <usize>(c - half - 1) * plane : 0;
      slide(S + <usize>c * plane, S + <usize>(c - 1) * plane, entering, leaving, alpha, spatial);
    }
    for (let c = 0; c < channels; c++) {
      const off = <usize>c * plane;
      let s = 0;
      for (; s + 4 <= spatial; s += 4) {
        const at = off + ((<usize>s) << 2);
        v128.store(Y + at, f32x4.mul(v128.load(X + at), powNegBeta4(v128.load(S + at), beta)));
      }
      for (; s < spatial; s++) {
        const at = off + ((<usize>s) << 2);
        store<f32>(Y + at, load<f32>(X + at) * powNegBeta(load<f32>(S + at), beta));
      }
    }
  }
}

/** dx = dy·scale^−β − 2αβ·x·Σ_window dy·y/scale, for images n0…n1. The window sum T slides like the
 * forward's; T of channel c is parked in dx[c] until dx[c] itself is written. */
export function lrnBackward(
  x: usize,
  y: usize,
  scale: usize,
  dy: usize,
  dx: usize,
  channels: i32,
  spatial: i32,
  size: i32,
  alpha: f32,
  beta: f32,
  n0: i32,
  n1: i32,
): void {
  const half = (size - 1) / 2;
  const plane = (<usize>spatial) << 2;
  const factor: f32 = -2 * alpha * beta;
  for (let n = n0; n < n1; n++) {
    const base = <usize>n * channels * plane;
    const X = x + base,
      Y = y + base,
      S = scale + base,
      DY = dy + base,
      DX = dx + base;
    memory.fill(DX, 0, plane);
    for (let c = 0; c <= half && c < channels; c++)
      addRatio(DX, DY + <usize>c * plane, Y + <usize>c * plane, S + <usize>c * plane, 1, spatial);
    for (let c = 1; c <= channels; c++) {
      if (c < channels) {
        const T = DX + <usize>c * plane;
        memory.copy(T, T - plane, plane);
        if (c + half < channels)
          addRatio(T, DY + <usize>(c + half) * plane, Y + <usize>(c + half) * plane, S + <usize>(c + half) * plane, 1, spatial);
        if (c - half - 1 >= 0)
          addRatio(
            T,
            DY + <usize>(c - half - 1) * plane,
            Y + <usize>(c - half - 1) * plane,
            S + <usize>(c - half - 1) * plane,
            -1,
            spatial,
          );
      }
      finish(
        DX + <usize>(c - 1) * plane,
        DY + <usize>(c - 1) * plane,
        X + <usize>(c - 1) * plane,
        S + <usize>(c - 1) * plane,
        factor,
        beta,
        spatial,
      );
    }
  }
}

/** t += sign · dy·y/scale over one plane. */
function addRatio(t: usize, dy: usize, y: usize, scale: usize, sign: f32, spatial: i32): void {
  const vs = f32x4.splat(sign);
  let s = 0;
  for (; s + 4 <= spatial; s += 4) {
    const at = (<usize>s) << 2;
    const r = f32x4.div(f32x4.mul(v128.load(dy + at), v128.load(y + at)), v128.load(scale + at));
    v128.store(t + at, f32x4.add(v128.load(t + at), f32x4.mul(vs, r)));
  }
  for (; s < spatial; s++) {
    const at = (<usize>s) << 2;
    store<f32>(t + at, load<f32>(t + at) + sign * ((load<f32>(dy + at) * load<f32>(y + at)) / load<f32>(scale + at)));
  }
}

/** dx = dy·scale^−β + factor·x·T, where dx holds T on entry. */
function finish(dx: usize, dy: usize, x: usize, scale: usize, factor: f32, beta: f32, spatial: i32): void {
  const vf = f32x4.splat(factor);
  let s = 0;
  for (; s + 4 <= spatial; s += 4) {
    const at = (<usize>s) << 2;
    const direct = f32x4.mul(v128.load(dy + at), powNegBeta4(v128.load(scale + at), beta));
    v128.store(dx + at, f32x4.add(direct, f32x4.mul(vf, f32x4.mul(v128.load(x + at), v128.load(dx + at)))));
  }
  for (; s < spatial; s++) {
    const at = (<usize>s) << 2;
    store<f32>(dx + at, load<f32>(dy + at) * powNegBeta(load<f32>(scale + at), beta) + factor * load<f32>(x + at) * load<f32>(dx + at));
  }
}
