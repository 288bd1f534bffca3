/**
 * The declarative network description: plain JSON, like Caffe's prototxt or cuda-convnet's layer
 * files. Layers run in the order written. A layer reads the blobs named in `inputs` (default: the
 * previous layer's first output, or the net's first input for the first layer) and writes the blobs
 * named in `outputs` (default: one blob named after the layer). Input shapes are per example; the
 * batch size is chosen when the net is built.
 */

/** One number for both dimensions, or [height, width]. */
export type Pair = number | [number, number];
/** One number for all sides, [height, width] for symmetric padding, or [top, left, bottom, right]. */
export type Padding = number | [number, number] | [number, number, number, number];

interface Base {
  name: string;
  inputs?: string[];
  outputs?: string[];
}

export interface Conv2dSpec extends Base {
  type: 'conv2d';
  outChannels: number;
  kernel: Pair;
  stride?: Pair;
  pad?: Padding;
  dilation?: Pair;
  /** Groups of input and output channels convolved separately: 2 gives the paper's two columns. */
  groups?: number;
  bias?: boolean;
}

export interface MaxPool2dSpec extends Base {
  type: 'maxpool2d';
  kernel: Pair;
  /** Default: the kernel size. */
  stride?: Pair;
  pad?: Padding;
  dilation?: Pair;
  /** Round the output size up, as Caffe does (a last window must still start inside the input). */
  ceil?: boolean;
}

export interface AdaptiveAvgPool2dSpec extends Base {
  type: 'adaptive_avgpool2d';
  output: Pair;
}

export interface LrnSpec extends Base {
  type: 'lrn';
  /** Channels in the window (odd). Paper: 5. */
  size: number;
  /** Paper: 1e-4. */
  alpha: number;
  /** Paper: 0.75. */
  beta: number;
  /** Paper: 2. */
  k: number;
  /**
   * How α scales the window sum. 'paper' (default): k + α·Σx², the formula as printed.
   * 'over-n': k + (α/n)·Σx², as Caffe, cuda-convnet, PyTorch and ONNX define it.
   */
  alphaConvention?: 'paper' | 'over-n';
}

export interface ActivationSpec extends Base {
  type: 'relu' | 'tanh' | 'sigmoid';
}

export interface LinearSpec extends Base {
  type: 'linear';
  outFeatures: number;
  bias?: boolean;
}

export interface DropoutSpec extends Base {
  type: 'dropout';
  /** Probability of dropping a unit. Paper: 0.5. */
  p: number;
}

export interface FlattenSpec extends Base {
  type: 'flatten';
  /** Dimensions before `axis` become the first output dimension, the rest the second. Default 1. */
  axis?: number;
}

export interface ConcatSpec extends Base {
  type: 'concat';
  /** Default 1 (channels). Negative counts from the end. */
  axis?: number;
}

export interface SplitSpec extends Base {
  type: 'split';
  axis?: number;
  /** Size of each part along the axis; the outputs default to `name:0`, `name:1`, … */
  sizes: number[];
}

export interface SoftmaxSpec extends Base {
  type: 'softmax' | 'log_softmax';
  /** Default 1 (channels / classes). Negative counts from the end. */
  axis?: number;
  /** 'axis' (default): normalise along `axis` only. 'trailing': over all dimensions from `axis` on,
   * as ONNX Softmax before opset 13. */
  over?: 'axis' | 'trailing';
}

export interface SoftmaxCrossEntropySpec extends Base {
  type: 'softmax_cross_entropy';
  /** [logits, labels]: logits [N, classes], labels [N] holding class indices. Output: the mean loss. */
  inputs?: [string, string];
}

export type LayerSpec =
  | Conv2dSpec
  | MaxPool2dSpec
  | AdaptiveAvgPool2dSpec
  | LrnSpec
  | ActivationSpec
  | LinearSpec
  | DropoutSpec
  | FlattenSpec
  | ConcatSpec
  | SplitSpec
  | SoftmaxSpec
  | SoftmaxCrossEntropySpec;

export type LayerType = LayerSpec['type'];

export interface NetSpec {
  name?: string;
  /** Per-example shape of each input blob, e.g. { "data": [3, 227, 227], "label": [] }. */
  inputs: Record<string, number[]>;
  layers: LayerSpec[];
}
