/**
 * Which blobs of a net play which part: the images, the labels, the logits and the loss. Found by
 * the loss layer's type, never by a name, so a spec may call its layers anything.
 */
import { type Net, planNet } from './net.js';
import type { LayerSpec, NetSpec } from './spec.js';

export interface NetRoles {
  /** The image input. */
  data: string;
  /** What the classifier outputs: the loss layer's scores, or the net's output without one. */
  logits: string;
  classes: number;
  /** Present when the net ends in a softmax cross-entropy loss. */
  labels?: string;
  loss?: string;
}

export type TrainingRoles = Required<NetRoles>;

export function netRoles(net: Net): NetRoles {
  const lossLayer = net.layers.find((l) => l.spec.type === 'softmax_cross_entropy');
  if (!lossLayer) {
    const [data] = net.inputNames,
      [logits] = net.outputNames;
    return { data: data!, logits: logits!, classes: net.shapeOf(logits!)[1] ?? 1 };
  }
  const [logits, labels] = net.layerInputs(lossLayer.name) as [string, string];
  const data = net.inputNames.find((name) => name !== labels);
  if (!data) throw new Error('the model has no image input besides its labels');
  return { data, labels, logits, loss: net.layerOutputs(lossLayer.name)[0]!, classes: net.shapeOf(logits)[1]! };
}

export function trainingRoles(net: Net): TrainingRoles {
  const roles = netRoles(net);
  if (!roles.loss) throw new Error('the model has no softmax_cross_entropy layer to train');
  return roles as TrainingRoles;
}

/** The number of classes a spec's loss layer scores (undefined without one). */
export function specClasses(spec: NetSpec): number | undefined {
  const plan = planNet(spec, 1);
  const loss = plan.layers.find((l) => l.layer.spec.type === 'softmax_cross_entropy');
  return loss ? plan.shapes.get(loss.inputs[0]!)![1] : undefined;
}

/** The spec with a softmax cross-entropy loss (and a `label` input) on its output, unless it has
 * one: an imported inference graph made trainable. A final softmax is dropped, its input scored. */
export function withLoss(spec: NetSpec): NetSpec {
  if (spec.layers.some((l) => l.type === 'softmax_cross_entropy')) return spec;
  const plan = planNet(spec, 1);
  let layers = spec.layers;
  const last = plan.layers[plan.layers.length - 1]!;
  if (last.layer.spec.type === 'softmax') layers = layers.slice(0, -1);
  const logits = last.layer.spec.type === 'softmax' ? last.inputs[0]! : last.outputs[0]!;
  const label = 'label' in spec.inputs ? 'label_' : 'label';
  return {
    ...spec,
    inputs: { ...spec.inputs, [label]: [] },
    layers: [...layers, { name: 'loss', type: 'softmax_cross_entropy', inputs: [logits, label] }],
  };
}

/** The layer a spec's loss scores: its classifier. */
export function classifierLayer(spec: NetSpec): LayerSpec | undefined {
  const plan = planNet(spec, 1);
  const loss = plan.layers.find((l) => l.layer.spec.type === 'softmax_cross_entropy');
  const name = loss && plan.layers.find((l) => l.outputs.includes(loss.inputs[0]!))?.layer.spec.name;
  return spec.layers.find((l) => l.name === name);
}

/** The spec with its classifier (the linear layer the loss scores) resized to `classes`. */
export function replaceClasses(spec: NetSpec, classes: number): NetSpec {
  const classifier = classifierLayer(spec);
  if (!classifier) throw new Error('the model has no softmax_cross_entropy layer whose classes could be set');
  if (classifier.type !== 'linear')
    throw new Error(`the layer the loss scores, '${classifier.name}', is a ${classifier.type}; only a linear classifier can be resized`);
  return { ...spec, layers: spec.layers.map((l) => (l === classifier ? { ...l, outFeatures: classes } : l)) };
}

/** The first convolution, and the columns its filters feed: the groups of the convolution after
 * it (the paper's net: 2, the first 48 of conv1's 96 filters feeding one GPU's column). */
export function firstConvolution(spec: NetSpec): { name: string; columns: number } | undefined {
  const convolutions = spec.layers.filter((l) => l.type === 'conv2d');
  const [first, next] = convolutions;
  if (!first) return undefined;
  const groups = next?.type === 'conv2d' ? (next.groups ?? 1) : 1;
  return { name: first.name, columns: groups };
}
