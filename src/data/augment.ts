/** Augmentation for small images: a random crop from the image padded by `pad` pixels of value
 * `fill` (the normalised value of a black pixel, so the border looks like the original's background),
 * and a horizontal flip with probability ½ — each image's drawn from its own generator, which the
 * caller seeds, so runs repeat. */
import type { Philox } from '../random.js';

export function cropAndFlip(
  batch: Float32Array,
  count: number,
  shape: [number, number, number],
  pad: number,
  fill: number,
  flip: boolean,
  randomOf: (image: number) => Philox,
  scratch: Float32Array,
): void {
  const size = shape[0] * shape[1] * shape[2];
  for (let b = 0; b < count; b++) {
    const rng = randomOf(b);
    const dy = pad ? rng.nextInt(2 * pad + 1) - pad : 0,
      dx = pad ? rng.nextInt(2 * pad + 1) - pad : 0;
    const mirror = flip && rng.nextFloat() < 0.5;
    shiftImage(batch.subarray(b * size, (b + 1) * size), shape, dx, dy, mirror, fill, scratch);
  }
}

/** Every image of a batch as the crop at offset (dx, dy) from its centre, after mirroring it when
 * told: the test patches of an image padded by |dx|, |dy| pixels of value `fill`. */
export function shiftImages(
  batch: Float32Array,
  count: number,
  shape: [number, number, number],
  view: { dx: number; dy: number; mirror: boolean },
  fill: number,
  scratch: Float32Array,
): void {
  const size = shape[0] * shape[1] * shape[2];
  for (let b = 0; b < count; b++) shiftImage(batch.subarray(b * size, (b + 1) * size), shape, view.dx, view.dy, view.mirror, fill, scratch);
}

function shiftImage(
  image: Float32Array,
  [C, H, W]: [number, number, number],
  dx: number,
  dy: number,
  mirror: boolean,
  fill: number,
  scratch: Float32Array,
): void {
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

/** Mirrors every image of a batch left to right, in place. */
export function mirrorImages(batch: Float32Array, count: number, shape: [number, number, number]): void {
  const [C, H, W] = shape;
  for (let row = 0; row < count * C * H; row++) batch.subarray(row * W, (row + 1) * W).reverse();
}
