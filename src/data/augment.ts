/** Augmentation for small images: a random crop from the image padded by `pad` pixels of value
 * `fill` (the normalised value of a black pixel, so the border looks like the original's background),
 * and a horizontal flip with probability ½ — drawn from a generator the caller seeds, so runs repeat. */
import type { Philox } from '../random.js';

export function cropAndFlip(
  batch: Float32Array,
  count: number,
  shape: [number, number, number],
  pad: number,
  fill: number,
  flip: boolean,
  rng: Philox,
  scratch: Float32Array,
): void {
  const [C, H, W] = shape;
  const size = C * H * W;
  for (let b = 0; b < count; b++) {
    const dy = pad ? rng.nextInt(2 * pad + 1) - pad : 0,
      dx = pad ? rng.nextInt(2 * pad + 1) - pad : 0;
    const mirror = flip && rng.nextFloat() < 0.5;
    const image = batch.subarray(b * size, (b + 1) * size);
    scratch.set(image);
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < H; y++) {
        const sy = y + dy;
        for (let x = 0; x < W; x++) {
          const sx = (mirror ? W - 1 - x : x) + dx;
          image[(c * H + y) * W + x] = sy >= 0 && sy < H && sx >= 0 && sx < W ? scratch[(c * H + sy) * W + sx]! : fill;
        }
      }
    }
  }
}

/** Mirrors every image of a batch left to right, in place. */
export function mirrorImages(batch: Float32Array, count: number, shape: [number, number, number]): void {
  const [C, H, W] = shape;
  for (let row = 0; row < count * C * H; row++) batch.subarray(row * W, (row + 1) * W).reverse();
}
