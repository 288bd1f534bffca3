/**
 * Parameter initialisation as declarative rules, run on the backend by the counter-based
 * `random_fill` kernel: nothing is generated on the host or copied, and every backend draws the
 * same values for the same seed. The paper's and Caffe's schemes arrive with the model zoo; the
 * default is PyTorch's for Conv2d and Linear: weights and biases ~ U(−1/√fanIn, 1/√fanIn).
 */
import type { Shape } from '../tensor.js';

export interface ParamInfo {
  /** Full name, e.g. `conv2.bias`. */
  name: string;
  layer: string;
  /** `weight` or `bias`. */
  role: string;
  shape: Shape;
  fanIn: number;
}

export type InitRule =
  | { distribution: 'uniform'; low: number; high: number }
  | { distribution: 'normal'; mean: number; std: number }
  | { distribution: 'constant'; value: number };

export type Initializer = (param: ParamInfo) => InitRule;

export const pytorchDefaultInit: Initializer = (param) => {
  const bound = 1 / Math.sqrt(param.fanIn);
  return { distribution: 'uniform', low: -bound, high: bound };
};

const HIDDEN_BIAS_ONE = new Set(['conv2', 'conv4', 'conv5', 'fc6', 'fc7']);

/** The paper's: weights ~ N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden fully
 * connected layers (fc6, fc7), 0 elsewhere. */
export const paperInit: Initializer = (param) =>
  param.role === 'bias'
    ? { distribution: 'constant', value: HIDDEN_BIAS_ONE.has(param.layer) ? 1 : 0 }
    : { distribution: 'normal', mean: 0, std: 0.01 };

/** The paper's weights with every bias 0: its section 5 credits the biases of 1 with accelerating
 * the early stages of learning (`alexnet reproduce` compares the two). */
export const paperZeroBiasInit: Initializer = (param) =>
  param.role === 'bias' ? { distribution: 'constant', value: 0 } : paperInit(param);

/** Caffe's bvlc_alexnet: weights ~ N(0, 0.01), fc6/fc7 N(0, 0.005); biases 0.1 where the paper has 1. */
export const caffeInit: Initializer = (param) => {
  if (param.role === 'bias') return { distribution: 'constant', value: HIDDEN_BIAS_ONE.has(param.layer) ? 0.1 : 0 };
  return { distribution: 'normal', mean: 0, std: param.layer === 'fc6' || param.layer === 'fc7' ? 0.005 : 0.01 };
};

/** He et al. (2015) for ReLU nets: weights ~ N(0, 2/fanIn), biases 0. Keeps the signal's scale
 * through deep ReLU stacks, where N(0, 0.01) and PyTorch's default shrink it layer by layer. */
export const kaimingInit: Initializer = (param) =>
  param.role === 'bias' ? { distribution: 'constant', value: 0 } : { distribution: 'normal', mean: 0, std: Math.sqrt(2 / param.fanIn) };

export const initializers: Record<string, Initializer> = {
  paper: paperInit,
  'paper-zero-bias': paperZeroBiasInit,
  caffe: caffeInit,
  pytorch: pytorchDefaultInit,
  kaiming: kaimingInit,
};
