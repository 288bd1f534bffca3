/**
 * How a photo becomes a model's input: the conventions the pretrained AlexNets were trained with.
 * Recorded with a model, so `predict` feeds each model what it expects.
 */

export interface Preprocess {
  /** The colour planes in the order the net takes them. */
  channels: 'rgb' | 'bgr' | 'grey';
  /** Per channel (or one for all), in units of x/255 for 8-bit pixels x: input = (x/255 − mean) / std. */
  mean: number[];
  std: number[];
  /** Rescale so the shorter side is this long, then crop the input size from the centre; without
   * it, the image is stretched to the input size (how the small nets' datasets are stored). */
  resize?: number;
}

/** torchvision's ImageNet models: RGB in [0, 1] normalised by ImageNet's channel statistics,
 * `Resize(256)` then `CenterCrop(224)`. */
export const TORCHVISION: Preprocess = { channels: 'rgb', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 256 };

/** Caffe's bvlc_alexnet: BGR in 0–255 less the training set's mean pixel (104, 117, 123; the mean
 * image's average), 227 cropped from the 256-pixel image. */
export const CAFFE: Preprocess = {
  channels: 'bgr',
  mean: [104 / 255, 117 / 255, 123 / 255],
  std: [1 / 255, 1 / 255, 1 / 255],
  resize: 256,
};

export const PRESETS: Record<string, Preprocess> = { torchvision: TORCHVISION, caffe: CAFFE };

/** The normalisation of the engine's own runs: one mean and deviation for all channels, stretched. */
export function uniformPreprocess(channels: number, mean: number, std: number): Preprocess {
  return { channels: channels === 1 ? 'grey' : 'rgb', mean: [mean], std: [std] };
}

/** A preset's name, or a JSON object, as given to `--preprocess`. */
export function parsePreprocess(value: string): Preprocess {
  const preset = PRESETS[value];
  if (preset) return preset;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`preprocessing '${value}' is neither ${Object.keys(PRESETS).join(' nor ')} nor a JSON object`);
  }
  return checkPreprocess(parsed, '--preprocess');
}

/** Checks a recorded or given preprocessing: known channels, positive deviations, a sane size. */
export function checkPreprocess(value: unknown, source: string): Preprocess {
  const fail = (what: string): never => {
    throw new Error(`${source}: preprocessing ${what}`);
  };
  if (typeof value !== 'object' || value === null) return fail('is not an object');
  const p = value as Partial<Preprocess>;
  if (!['rgb', 'bgr', 'grey'].includes(p.channels as string)) fail(`channels '${String(p.channels)}' is not rgb, bgr or grey`);
  const numbers = (list: unknown, name: string) =>
    Array.isArray(list) && list.length >= 1 && list.every((x) => Number.isFinite(x))
      ? (list as number[])
      : fail(`${name} is not a list of numbers`);
  const mean = numbers(p.mean, 'mean'),
    std = numbers(p.std, 'std');
  if (std.some((s) => s <= 0)) fail('std has a value that is not positive');
  if (p.resize !== undefined && !(Number.isInteger(p.resize) && p.resize >= 1 && p.resize <= 65_536))
    fail('resize is not a size in pixels');
  return { channels: p.channels!, mean, std, ...(p.resize !== undefined ? { resize: p.resize } : {}) };
}

/** Normalises one image of 8-bit planes (RGB or grey order) into `out` at `at`, reordering to BGR
 * when asked. */
export function normaliseImage(planar: Uint8Array, planes: number, preprocess: Preprocess, out: Float32Array, at: number): void {
  const size = planar.length / planes;
  const { mean, std } = preprocess;
  for (let c = 0; c < planes; c++) {
    const source = preprocess.channels === 'bgr' ? planes - 1 - c : c;
    const m = mean[c % mean.length]!,
      s = std[c % std.length]!;
    const base = at + c * size;
    for (let p = 0; p < size; p++) out[base + p] = (planar[source * size + p]! / 255 - m) / s; // as normalisePixels, to the bit
  }
}

/** The one mean and deviation of a uniform preprocessing (what IDX and CIFAR evaluation applies). */
export function uniformNormalisation(preprocess: Preprocess, source: string): { mean: number; std: number } {
  const { mean, std, channels } = preprocess;
  const same = (list: number[]) => list.every((x) => x === list[0]);
  if (channels === 'bgr' || !same(mean) || !same(std))
    throw new Error(
      `${source} normalises each colour channel its own way (${JSON.stringify(preprocess)}); IDX and CIFAR data need one mean and deviation`,
    );
  return { mean: mean[0]!, std: std[0]! };
}

/** Python's round(), which torchvision's CenterCrop uses for the crop's corner. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
