/** AlexNet as net specs: the paper's two-column network and torchvision's one-column variant. */
import type { LayerSpec, NetSpec } from '../net/spec.js';

export interface AlexNetOptions {
  /** 227 (as Caffe, no padding on conv1) or 224 (as torchvision, 2 pixels of padding on conv1).
   * Both give conv1 a 55×55 output. Default 224, the size the paper states. */
  inputSize?: 224 | 227;
  classes?: number;
  /** The LRN α convention; the paper's formula by default. See `LrnSpec.alphaConvention`. */
  lrnAlphaConvention?: 'paper' | 'over-n';
}

/** The network of Krizhevsky, Sutskever and Hinton (2012): the two GPU columns are groups=2 in
 * conv2, conv4 and conv5; LRN after conv1 and conv2; overlapping 3/2 max-pools; dropout 0.5 on fc6
 * and fc7. With a `label` input and a softmax cross-entropy loss. */
export function alexnet(options: AlexNetOptions = {}): NetSpec {
  const inputSize = options.inputSize ?? 224;
  const lrn = (name: string): LayerSpec => ({
    name,
    type: 'lrn',
    size: 5,
    alpha: 1e-4,
    beta: 0.75,
    k: 2,
    alphaConvention: options.lrnAlphaConvention ?? 'paper',
  });
  return {
    name: `alexnet-${inputSize}`,
    inputs: { data: [3, inputSize, inputSize], label: [] },
    layers: [
      { name: 'conv1', type: 'conv2d', outChannels: 96, kernel: 11, stride: 4, pad: inputSize === 224 ? 2 : 0 },
      { name: 'relu1', type: 'relu' },
      lrn('norm1'),
      { name: 'pool1', type: 'maxpool2d', kernel: 3, stride: 2 },
      { name: 'conv2', type: 'conv2d', outChannels: 256, kernel: 5, pad: 2, groups: 2 },
      { name: 'relu2', type: 'relu' },
      lrn('norm2'),
      { name: 'pool2', type: 'maxpool2d', kernel: 3, stride: 2 },
      { name: 'conv3', type: 'conv2d', outChannels: 384, kernel: 3, pad: 1 },
      { name: 'relu3', type: 'relu' },
      { name: 'conv4', type: 'conv2d', outChannels: 384, kernel: 3, pad: 1, groups: 2 },
      { name: 'relu4', type: 'relu' },
      { name: 'conv5', type: 'conv2d', outChannels: 256, kernel: 3, pad: 1, groups: 2 },
      { name: 'relu5', type: 'relu' },
      { name: 'pool5', type: 'maxpool2d', kernel: 3, stride: 2 },
      { name: 'fc6', type: 'linear', outFeatures: 4096 },
      { name: 'relu6', type: 'relu' },
      { name: 'drop6', type: 'dropout', p: 0.5 },
      { name: 'fc7', type: 'linear', outFeatures: 4096 },
      { name: 'relu7', type: 'relu' },
      { name: 'drop7', type: 'dropout', p: 0.5 },
      { name: 'fc8', type: 'linear', outFeatures: options.classes ?? 1000 },
      { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc8', 'label'] },
    ],
  };
}

export interface TorchvisionOptions {
  classes?: number;
  /** Channels of the five convolutions and units of the two hidden linear layers: torchvision's
   * [64, 192, 384, 256, 256, 4096, 4096] by default (other widths: scaled-down copies, as tests use). */
  widths?: readonly number[];
  /** The adaptive average pool's output size; 6 in torchvision. */
  pool?: number;
}

/** torchvision.models.alexnet: one column, no LRN, adaptive average pooling to 6×6, dropout before
 * fc6 and fc7. Layers are named as torchvision's modules (`features.0` … `classifier.6`), so the
 * parameters carry PyTorch's state_dict names (`features.0.weight`) in and out. */
export function alexnetTorchvision(options: TorchvisionOptions = {}): NetSpec {
  const [c1, c2, c3, c4, c5, fc6, fc7] = options.widths ?? [64, 192, 384, 256, 256, 4096, 4096];
  const conv = (index: number, outChannels: number, kernel: number, pad: number, stride = 1): LayerSpec => ({
    name: `features.${index}`,
    type: 'conv2d',
    outChannels,
    kernel,
    pad,
    ...(stride > 1 ? { stride } : {}),
  });
  const relu = (module: string): LayerSpec => ({ name: module, type: 'relu' });
  const pool = (index: number): LayerSpec => ({ name: `features.${index}`, type: 'maxpool2d', kernel: 3, stride: 2 });
  return {
    name: 'alexnet-torchvision',
    inputs: { data: [3, 224, 224], label: [] },
    layers: [
      conv(0, c1!, 11, 2, 4),
      relu('features.1'),
      pool(2),
      conv(3, c2!, 5, 2),
      relu('features.4'),
      pool(5),
      conv(6, c3!, 3, 1),
      relu('features.7'),
      conv(8, c4!, 3, 1),
      relu('features.9'),
      conv(10, c5!, 3, 1),
      relu('features.11'),
      pool(12),
      { name: 'avgpool', type: 'adaptive_avgpool2d', output: options.pool ?? 6 },
      { name: 'classifier.0', type: 'dropout', p: 0.5 },
      { name: 'classifier.1', type: 'linear', outFeatures: fc6! },
      relu('classifier.2'),
      { name: 'classifier.3', type: 'dropout', p: 0.5 },
      { name: 'classifier.4', type: 'linear', outFeatures: fc7! },
      relu('classifier.5'),
      { name: 'classifier.6', type: 'linear', outFeatures: options.classes ?? 1000 },
      { name: 'loss', type: 'softmax_cross_entropy', inputs: ['classifier.6', 'label'] },
    ],
  };
}

export interface SmallAlexNetOptions {
  /** 28 (MNIST, Fashion-MNIST) or 32 (CIFAR). */
  inputSize: 28 | 32;
  channels: number;
  classes: number;
  /** Channels of conv1…conv5 and units of fc6/fc7. Default [32, 64, 64, 64, 64, 512]. */
  widths?: [number, number, number, number, number, number];
  /** The dropout rate of fc6 and fc7. Default 0.25 (the paper's 0.5 costs short runs half a point). */
  dropout?: number;
}

/**
 * AlexNet scaled for small images: the same layer types in the same order — five convolutions
 * (conv2, conv4 and conv5 in two columns), ReLU, LRN after the first two, overlapping 3/2
 * max-pools, two fully connected layers with dropout — with widths 32-64-64-64-64 and 512-unit FC
 * layers, conv1 5×5 with stride 1 instead of 11×11 with stride 4, ceil pooling so 28 → 14 → 7 → 3.
 * The LRN uses the paper's α convention and constants. Chosen for a 15-minute run on 2 cores
 * (BENCHMARKS.md): conv3/conv4 at 64 instead of 96 channels train 1.25× faster and reached the same
 * accuracy after 2 epochs of Fashion-MNIST (88.46 vs 88.58 %); FC layers of 256 instead of 512 lost
 * a point after 5; and dropout 0.25 instead of the paper's 0.5, because a net this small trained this
 * briefly underfits (training error ≈ validation error): 91.20 against 90.74 % after 5 epochs.
 */
export function alexnetSmall(options: SmallAlexNetOptions): NetSpec {
  const [c1, c2, c3, c4, c5, fc] = options.widths ?? [32, 64, 64, 64, 64, 512];
  const dropout = options.dropout ?? 0.25;
  const lrn = (name: string): LayerSpec => ({ name, type: 'lrn', size: 5, alpha: 1e-4, beta: 0.75, k: 2 });
  return {
    name: `alexnet-small-${options.inputSize}`,
    inputs: { data: [options.channels, options.inputSize, options.inputSize], label: [] },
    layers: [
      { name: 'conv1', type: 'conv2d', outChannels: c1, kernel: 5, pad: 2 },
      { name: 'relu1', type: 'relu' },
      lrn('norm1'),
      { name: 'pool1', type: 'maxpool2d', kernel: 3, stride: 2, ceil: true },
      { name: 'conv2', type: 'conv2d', outChannels: c2, kernel: 5, pad: 2, groups: 2 },
      { name: 'relu2', type: 'relu' },
      lrn('norm2'),
      { name: 'pool2', type: 'maxpool2d', kernel: 3, stride: 2, ceil: true },
      { name: 'conv3', type: 'conv2d', outChannels: c3, kernel: 3, pad: 1 },
      { name: 'relu3', type: 'relu' },
      { name: 'conv4', type: 'conv2d', outChannels: c4, kernel: 3, pad: 1, groups: 2 },
      { name: 'relu4', type: 'relu' },
      { name: 'conv5', type: 'conv2d', outChannels: c5, kernel: 3, pad: 1, groups: 2 },
      { name: 'relu5', type: 'relu' },
      { name: 'pool5', type: 'maxpool2d', kernel: 3, stride: 2, ceil: true },
      { name: 'fc6', type: 'linear', outFeatures: fc },
      { name: 'relu6', type: 'relu' },
      { name: 'drop6', type: 'dropout', p: dropout },
      { name: 'fc7', type: 'linear', outFeatures: fc },
      { name: 'relu7', type: 'relu' },
      { name: 'drop7', type: 'dropout', p: dropout },
      { name: 'fc8', type: 'linear', outFeatures: options.classes },
      { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc8', 'label'] },
    ],
  };
}

/** Caffe's bvlc_alexnet: 227×227 input, LRN as Caffe defines it (α/n, k = 1), normalisation before
 * pooling, pooling with ceil rounding; train it with `--init caffe` (biases 0.1, fc6/fc7 std 0.005). */
export function alexnetCaffe(options: { classes?: number } = {}): NetSpec {
  const lrn = (name: string): LayerSpec => ({ name, type: 'lrn', size: 5, alpha: 1e-4, beta: 0.75, k: 1, alphaConvention: 'over-n' });
  const pool = (name: string): LayerSpec => ({ name, type: 'maxpool2d', kernel: 3, stride: 2, ceil: true });
  const spec = alexnet({ inputSize: 227, classes: options.classes });
  return {
    ...spec,
    name: 'alexnet-caffe',
    layers: spec.layers.map((l) => (l.type === 'lrn' ? lrn(l.name) : l.type === 'maxpool2d' ? pool(l.name) : l)),
  };
}
