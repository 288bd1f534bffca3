/** Image files (PNG, JPEG, WebP, …) as model inputs: decoded by sharp, resized, normalised. */
import sharp from 'sharp';
import { normalisePixels } from './dataset.js';

/**
 * The images as one NCHW batch for a model taking C×H×W inputs (C = 1 or 3): each decoded,
 * stretched to H×W, its alpha dropped (and turned grey for C = 1), its planes separated and its
 * pixels normalised as the model was trained: (x/255 − mean)/std.
 */
export async function loadImageFiles(
  files: string[],
  [channels, height, width]: readonly number[],
  mean: number,
  std: number,
): Promise<Float32Array> {
  if (channels !== 1 && channels !== 3)
    throw new Error(`the model takes ${channels}-channel images; only grey (1) or RGB (3) images can be decoded`);
  const size = channels * height! * width!,
    plane = height! * width!;
  const batch = new Float32Array(files.length * size);
  const planar = new Uint8Array(size);
  for (const [i, file] of files.entries()) {
    let pixels: Buffer;
    try {
      let image = sharp(file).resize(width, height, { fit: 'fill' }).removeAlpha();
      if (channels === 1) image = image.grayscale();
      pixels = await image.raw().toBuffer();
    } catch (error) {
      throw new Error(`cannot decode image ${file}: ${(error as Error).message}`, { cause: error });
    }
    if (pixels.length !== size)
      throw new Error(`${file}: decoded to ${pixels.length} values, the model takes ${channels}×${height}×${width}`);
    for (let c = 0; c < channels; c++) for (let p = 0; p < plane; p++) planar[c * plane + p] = pixels[p * channels + c]!;
    normalisePixels(planar, mean, std, batch, i * size);
  }
  return batch;
}
