/**
 * The route of every convolution and linear layer of the zoo's nets on the native backend
 * (src/backend/native/policy.ts), forward and backward, pinned for oneDNN's AVX2 layout (8-channel
 * blocks) and its AVX-512 one (16): a change of threshold or rule that moves a layer shows here.
 * Inference keeps activations blocked between convolutions where it can (strips need that);
 * training reads them as NCHW for the backward passes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConvolutionPass, convolutionRoute, linearRoute, type LinearPass } from '../src/backend/native/policy.js';
import type { Conv2dGeometry, LinearParams } from '../src/backend/kernels.js';
import { models } from '../src/models/index.js';
import { planNet } from '../src/net/net.js';

/** Each weighted layer's route in order: `dnnl` in inference, `dnnl/blas/blas` (forward, data
 * gradient, weight gradient) in training. */
function routesOf(model: string, batch: number, block: number, training: boolean): string {
  const plan = planNet(models[model]!.spec(), batch);
  const blocked = new Map<string, number>();
  const rows: string[] = [];
  for (const { layer, inputs, outputs } of plan.layers) {
    const [input, output] = [inputs[0]!, outputs[0]!];
    const spec = layer.spec;
    if (spec.type === 'conv2d') {
      const g = (layer as unknown as { geometry: Conv2dGeometry }).geometry;
      const route = (pass: ConvolutionPass) =>
        convolutionRoute(pass, g, { dnnl: true, block: blocked.get(input), outputReadAsNchw: training });
      const forward = route('forward');
      if (!training && g.outChannels % block === 0) blocked.set(output, block);
      rows.push(training ? [forward, route('backward_data'), route('backward_weights')].join('/') : forward);
    } else if (spec.type === 'linear') {
      const p = (layer as unknown as { params: LinearParams }).params;
      const route = (pass: LinearPass) => linearRoute(pass, p, { dnnl: true });
      rows.push(`${training ? [route('forward'), route('backward_data'), route('backward_params')].join('/') : route('forward')}`);
    } else if ((spec.type === 'relu' || spec.type === 'maxpool2d') && blocked.has(input)) {
      blocked.set(output, blocked.get(input)!);
    }
  }
  return rows.join(' ');
}

const PINNED: Record<string, string> = {
  'alexnet 1 8 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet 1 16 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet 64 8 infer': 'dnnl dnnl dnnl strips strips dnnl dnnl dnnl',
  'alexnet 64 8 train':
    'dnnl/blas/blas dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/blas/blas dnnl/blas/blas dnnl/blas/blas',
  'alexnet 64 16 infer': 'dnnl dnnl dnnl dnnl dnnl dnnl dnnl dnnl',
  'alexnet 64 16 train':
    'dnnl/blas/blas dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/blas/blas dnnl/blas/blas dnnl/blas/blas',
  'alexnet-torchvision 1 8 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-torchvision 1 16 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-torchvision 64 8 infer': 'dnnl dnnl strips strips strips dnnl dnnl dnnl',
  'alexnet-torchvision 64 8 train':
    'dnnl/blas/blas dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/blas/blas dnnl/blas/blas dnnl/blas/blas',
  'alexnet-torchvision 64 16 infer': 'dnnl dnnl dnnl dnnl dnnl dnnl dnnl dnnl',
  'alexnet-torchvision 64 16 train':
    'dnnl/blas/blas dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/blas/blas dnnl/blas/blas dnnl/blas/blas',
  'alexnet-small-28 1 8 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-small-28 1 16 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-small-28 64 8 infer': 'dnnl dnnl dnnl strips strips wasm wasm wasm',
  'alexnet-small-28 64 8 train':
    'dnnl/blas/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl wasm/wasm/wasm wasm/wasm/wasm wasm/wasm/wasm',
  'alexnet-small-28 64 16 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-small-28 64 16 train':
    'dnnl/blas/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl wasm/wasm/wasm wasm/wasm/wasm wasm/wasm/wasm',
  'alexnet-small-32 1 8 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-small-32 1 16 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-small-32 64 8 infer': 'dnnl dnnl dnnl strips strips wasm wasm wasm',
  'alexnet-small-32 64 8 train':
    'dnnl/blas/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl wasm/wasm/wasm wasm/wasm/wasm wasm/wasm/wasm',
  'alexnet-small-32 64 16 infer': 'dnnl dnnl dnnl dnnl dnnl wasm wasm wasm',
  'alexnet-small-32 64 16 train':
    'dnnl/blas/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl dnnl/dnnl/dnnl wasm/wasm/wasm wasm/wasm/wasm wasm/wasm/wasm',
};

test('every convolution and linear layer of the zoo nets takes its pinned route, forward and backward, on AVX2 and AVX-512', () => {
  for (const [key, expected] of Object.entries(PINNED)) {
    const [model, batch, block, mode] = key.split(' ');
    const names = planNet(models[model!]!.spec(), 1)
      .layers.filter(({ layer }) => layer.spec.type === 'conv2d' || layer.spec.type === 'linear')
      .map(({ layer }) => layer.spec.name);
    assert.equal(routesOf(model!, Number(batch), Number(block), mode === 'train'), expected, `${key} (${names.join(' ')})`);
  }
});
