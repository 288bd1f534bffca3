/** Image files (PNG, JPEG, WebP, …) as model inputs: decoded by sharp, resized, normalised. */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { PHOTO_EXTENSIONS } from './photos.js';
import { normaliseImage, type Preprocess, roundHalfEven } from './preprocess.js';

/** The paths, each folder replaced by the image files (by extension) under it, in name order; files stay as given. */
export function imageFilesIn(paths: readonly string[]): string[] {
  return paths.flatMap((path) => {
    if (!statSync(path, { throwIfNoEntry: false })?.isDirectory()) return [path];
    return readdirSync(path)
      .sort()
      .flatMap((name) => {
        const entry = join(path, name);
        // A dangling link stays an image path: it is reported as unreadable beside the others, not thrown here.
        if (statSync(entry, { throwIfNoEntry: false })?.isDirectory()) return imageFilesIn([entry]);
        return PHOTO_EXTENSIONS.includes(extname(name).toLowerCase()) ? [entry] : [];
      });
  });
}

/**
 * The images as one NCHW batch for a model taking C×H×W inputs (C = 1 or 3): each decoded (EXIF
 * orientation applied, alpha dropped, grey for C = 1), brought to H×W as `preprocess` says —
 * stretched, or its shorter side rescaled (bilinear, as torchvision's and Caffe's tools) and the
 * centre cropped — then normalised per channel.
 */
export async function loadImageFiles(
  files: string[],
  [channels, height, width]: readonly number[],
  preprocess: Preprocess,
): Promise<Float32Array> {
  if (channels !== 1 && channels !== 3)
    throw new Error(`the model takes ${channels}-channel images; only grey (1) or RGB (3) images can be decoded`);
  const size = channels * height! * width!,
    plane = height! * width!;
  const batch = new Float32Array(files.length * size);
  const planar = new Uint8Array(size);
  for (const [i, file] of files.entries()) {
    const pixels = await decode(file, channels, width!, height!, preprocess.resize);
    for (let c = 0; c < channels; c++) for (let p = 0; p < plane; p++) planar[c * plane + p] = pixels[p * channels + c]!;
    normaliseImage(planar, channels, preprocess, batch, i * size);
  }
  return batch;
}

/** Interleaved 8-bit pixels of `width`×`height`. */
async function decode(file: string, channels: number, width: number, height: number, resize?: number): Promise<Uint8Array> {
  try {
    const image = uprightPixels(file, channels as 1 | 3);
    if (resize === undefined)
      return checked(await image.resize(width, height, { fit: 'fill' }).raw().toBuffer(), width * height * channels);
    if (resize < Math.max(width, height)) throw new Error(`cannot crop ${width}×${height} from an image rescaled to ${resize}`);
    const { data, info } = await image
      .resize({ width: resize, height: resize, fit: 'outside', kernel: 'linear' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    checked(data, info.width * info.height * channels);
    const left = roundHalfEven((info.width - width) / 2),
      top = roundHalfEven((info.height - height) / 2);
    const out = new Uint8Array(width * height * channels);
    const row = width * channels;
    for (let y = 0; y < height; y++) {
      const from = ((top + y) * info.width + left) * channels;
      out.set(data.subarray(from, from + row), y * row);
    }
    return out;
  } catch (error) {
    throw new Error(`cannot decode image ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** A photo upright (its EXIF orientation applied), alpha dropped (as PIL's convert('RGB')), grey
 * for one channel, sRGB for three (grey, CMYK and palettes alike); corrupt or truncated files
 * fail (sharp's failOn: 'warning'). What predict and prepare both start from. */
export function uprightPixels(file: string, channels: 1 | 3): sharp.Sharp {
  const image = sharp(file, { failOn: 'warning' }).rotate().removeAlpha();
  return channels === 1 ? image.grayscale() : image.toColourspace('srgb');
}

function checked(pixels: Uint8Array, size: number): Uint8Array {
  if (pixels.length !== size) throw new Error(`decoded to ${pixels.length} values, ${size} expected`);
  return pixels;
}
