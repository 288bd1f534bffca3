/** The tiny nets the suites train on 8×8 grey images (helpers.ts's `columnDataset`), in one place:
 * each a conv1 → relu1 → pool1 head and the layers its suite needs; and one for 32×32 photos. */
import type { LayerSpec, NetSpec } from '../src/index.js';

function tiny(channels: number, rest: LayerSpec[]): NetSpec {
  return {
    name: 'tiny',
    inputs: { data: [1, 8, 8], label: [] },
    layers: [{ name: 'conv1', type: 'conv2d', outChannels: channels, kernel: 3, pad: 1 }, { name: 'relu1', type: 'relu' }, ...rest],
  };
}

const pool1: LayerSpec = { name: 'pool1', type: 'maxpool2d', kernel: 3, stride: 2, ceil: true };

/** The smallest: one linear layer over 5 classes (the CLI's suite). */
export const tinyLinear = tiny(4, [
  pool1,
  { name: 'fc', type: 'linear', outFeatures: 5 },
  { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc', 'label'] },
]);

/** With dropout, and a loss not called 'loss' (the fault suite). */
export const tinyDropout = tiny(8, [
  pool1,
  { name: 'fc', type: 'linear', outFeatures: 32 },
  { name: 'drop', type: 'dropout', p: 0.5 },
  { name: 'out', type: 'linear', outFeatures: 4 },
  { name: 'xent', type: 'softmax_cross_entropy', inputs: ['out', 'label'] },
]);

/** A hidden layer and a classifier to resize and freeze around (the fine-tuning suite). */
export const tinyHidden = tiny(4, [
  pool1,
  { name: 'fc', type: 'linear', outFeatures: 16 },
  { name: 'relu2', type: 'relu' },
  { name: 'out', type: 'linear', outFeatures: 4 },
  { name: 'loss', type: 'softmax_cross_entropy', inputs: ['out', 'label'] },
]);

/** The paper's layer kinds in small: LRN, overlapping pooling, a two-column convolution, dropout
 * (the training suite). */
export const tinyColumns = tiny(4, [
  { name: 'norm1', type: 'lrn', size: 3, alpha: 1e-4, beta: 0.75, k: 2 },
  pool1,
  { name: 'conv2', type: 'conv2d', outChannels: 8, kernel: 3, pad: 1, groups: 2 },
  { name: 'relu2', type: 'relu' },
  { name: 'fc', type: 'linear', outFeatures: 16 },
  { name: 'drop', type: 'dropout', p: 0.5 },
  { name: 'out', type: 'linear', outFeatures: 4 },
  { name: 'loss', type: 'softmax_cross_entropy', inputs: ['out', 'label'] },
]);

/** For 32×32 RGB photos (crops of a store, helpers.ts's `photoFolder`): conv, ReLU, a 4×4 pool,
 * then with `hidden` a fully connected layer with dropout 0.5, and the classifier. */
export function rgb32(classes: number, hidden?: number): NetSpec {
  const fc = (name: string, outFeatures: number): LayerSpec => ({ name, type: 'linear', outFeatures });
  return {
    name: 'rgb32',
    inputs: { data: [3, 32, 32], label: [] },
    layers: [
      { name: 'conv1', type: 'conv2d', outChannels: 4, kernel: 3, pad: 1 },
      { name: 'relu1', type: 'relu' },
      { name: 'pool1', type: 'maxpool2d', kernel: 4, stride: 4 },
      ...(hidden ? [fc('hidden', hidden), { name: 'drop', type: 'dropout', p: 0.5 } as LayerSpec] : []),
      fc('fc', classes),
      { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc', 'label'] },
    ],
  };
}
