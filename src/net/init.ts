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
