/** Parameter initialisation. The paper's and Caffe's schemes arrive with the model zoo; the default
 * here is PyTorch's for Conv2d and Linear: weights and biases ~ U(−1/√fanIn, 1/√fanIn). */
import type { Philox } from '../random.js';
import type { Shape } from '../tensor.js';
import { sizeOf } from '../tensor.js';

export interface ParamInfo {
  /** Full name, e.g. `conv2.bias`. */
  name: string;
  layer: string;
  /** `weight` or `bias`. */
  role: string;
  shape: Shape;
  fanIn: number;
}

export type Initializer = (param: ParamInfo, rng: Philox) => ArrayLike<number>;

export const pytorchDefaultInit: Initializer = (param, rng) => {
  const bound = 1 / Math.sqrt(param.fanIn);
  return Float64Array.from({ length: sizeOf(param.shape) }, () => (2 * rng.nextFloat() - 1) * bound);
};
