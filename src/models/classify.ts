/** Top classes of image files under an opened model: decoded, preprocessed and run a batch at a time. */
import { availableParallelism } from 'node:os';
import { loadImageFiles } from '../data/images.js';
import { PRESETS } from '../data/preprocess.js';
import { sizeOf } from '../tensor.js';
import { logitsInBatches, softmaxRows } from '../net/inference.js';
import type { OpenedModel } from './open.js';

export interface Classified {
  image: string;
  /** The most probable classes, most probable first. */
  top: { class: number; name?: string; probability: number }[];
}

/** An image that could not be decoded, and why. */
export interface Unreadable {
  image: string;
  error: string;
}

/**
 * Each image's `top` classes under the model, handed to `each` in the images' order as its batch (`model.net.batch` images)
 * is done. An image that does not decode comes as `Unreadable`; the others are scored all the same.
 */
export async function classifyImages(
  model: OpenedModel,
  images: readonly string[],
  top: number,
  each: (result: Classified | Unreadable) => void,
): Promise<void> {
  const { net, data, classes, preprocess, classNames } = model;
  if (!preprocess)
    throw new Error(
      `${model.path} does not record how its images were preprocessed: pass --preprocess (${Object.keys(PRESETS).join(', ')} or JSON)`,
    );
  const shape = net.shapeOf(data).slice(1);
  const failed = new Map<number, string>();
  const probabilities = new Float64Array(net.batch * classes);
  await logitsInBatches(
    net,
    images.length,
    async (from, to, x) => {
      const decode = async (i: number) => {
        try {
          x.set(await loadImageFiles([images[i]!], shape, preprocess), (i - from) * sizeOf(shape));
          failed.delete(i);
        } catch (error) {
          failed.set(i, (error as Error).message);
        }
      };
      // As many decodes in flight as cores (sharp decodes each on a libuv thread): 1,500 photos 19.2–19.3 s instead of 21.1–21.6.
      let next = from;
      const worker = async () => {
        for (let i = next++; i < to; i = next++) await decode(i);
      };
      await Promise.all(Array.from({ length: Math.min(availableParallelism(), to - from) }, worker));
      // libvips keeps one error buffer for all its threads, so concurrent failures mix their messages: each failed image is
      // decoded again alone for its own.
      for (const i of [...failed.keys()].filter((i) => i >= from)) await decode(i);
    },
    (from, to, z) => {
      softmaxRows(z, to - from, classes, probabilities);
      for (let i = 0; i < to - from; i++) {
        const [image, error] = [images[from + i]!, failed.get(from + i)];
        if (error !== undefined) {
          each({ image, error });
          continue;
        }
        const ranked = Array.from(probabilities.subarray(i * classes, (i + 1) * classes), (probability, c) => ({
          class: c,
          ...(classNames ? { name: classNames[c] } : {}),
          probability,
        }));
        each({ image, top: ranked.sort((a, b) => b.probability - a.probability).slice(0, top) });
      }
    },
  );
}
