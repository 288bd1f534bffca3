/** The layer registry: one constructor per spec type. A new layer type is added here. */
import type { LayerSpec, LayerType } from '../net/spec.js';
import type { Shape } from '../tensor.js';
import { Conv2d } from './conv.js';
import { Activation, Dropout } from './elementwise.js';
import { type Layer, SpecError } from './layer.js';
import { Linear } from './linear.js';
import { LocalResponseNorm } from './lrn.js';
import { AdaptiveAvgPool2d, MaxPool2d } from './pool.js';
import { Concat, Flatten, Split } from './reshape.js';
import { Softmax, SoftmaxCrossEntropy } from './softmax.js';

type Constructor = new (spec: never, inputShapes: Shape[]) => Layer;

const registry: Record<LayerType, Constructor> = {
  conv2d: Conv2d,
  maxpool2d: MaxPool2d,
  adaptive_avgpool2d: AdaptiveAvgPool2d,
  lrn: LocalResponseNorm,
  relu: Activation,
  tanh: Activation,
  sigmoid: Activation,
  linear: Linear,
  dropout: Dropout,
  flatten: Flatten,
  concat: Concat,
  split: Split,
  softmax: Softmax,
  log_softmax: Softmax,
  softmax_cross_entropy: SoftmaxCrossEntropy,
};

export const layerTypes = Object.keys(registry) as LayerType[];

export function createLayer(spec: LayerSpec, inputShapes: Shape[]): Layer {
  const constructor = registry[spec.type];
  if (!constructor) throw new SpecError(`${spec.name}: unknown layer type ${JSON.stringify(spec.type)} (known: ${layerTypes.join(', ')})`);
  return new constructor(spec as never, inputShapes);
}

export { Layer, SpecError, type Param, type ParamDecl, type ForwardArgs, type BackwardArgs } from './layer.js';
