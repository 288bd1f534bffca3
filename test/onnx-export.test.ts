/**
 * ONNX export, checked two ways: our own importer reads the model back to the same outputs, and
 * onnxruntime-web (an ONNX implementation no one here wrote) runs it to the same outputs.
 */
import { test } from 'node:test';
import * as ort from 'onnxruntime-web';
import { Net, type NetSpec, Philox, ReferenceBackend } from '../src/index.js';
import { exportOnnx } from '../src/onnx/export.js';
import { importOnnx } from '../src/onnx/import.js';
import { decodeModel } from '../src/onnx/proto.js';
import { assertClose } from './helpers.js';

const twoColumn: NetSpec = {
  name: 'two-column',
  inputs: { data: [3, 35, 35], label: [] },
  layers: [
    { name: 'conv1', type: 'conv2d', outChannels: 8, kernel: 5, stride: 2, pad: [1, 2, 2, 1] },
    { name: 'relu1', type: 'relu' },
    { name: 'norm1', type: 'lrn', size: 5, alpha: 0.01, beta: 0.75, k: 2 },
    { name: 'pool1', type: 'maxpool2d', kernel: 3, stride: 2, ceil: true },
    { name: 'conv2', type: 'conv2d', outChannels: 12, kernel: 3, pad: 1, groups: 2 },
    { name: 'norm2', type: 'lrn', size: 3, alpha: 0.2, beta: 0.5, k: 1, alphaConvention: 'over-n' },
    { name: 'tanh', type: 'tanh' },
    { name: 'fc6', type: 'linear', outFeatures: 16 },
    { name: 'drop6', type: 'dropout', p: 0.5 },
    { name: 'sig', type: 'sigmoid' },
    { name: 'fc7', type: 'linear', outFeatures: 5 },
    { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc7', 'label'] },
  ],
};

async function logits(spec: NetSpec, batch: number) {
  const net = Net.build(spec, { backend: new ReferenceBackend(), batch, seed: 5 });
  const rng = new Philox(3);
  const data = Float32Array.from({ length: net.shapeOf('data').reduce((a, b) => a * b) }, () => rng.nextNormal());
  net.setInput('data', data);
  net.setInput('label', new Float32Array(batch));
  net.forward();
  return { net, data, expected: await net.read('fc7') };
}

test('an exported net reads back through our ONNX importer to the same logits', async () => {
  const { net, data, expected } = await logits(twoColumn, 2);
  const imported = importOnnx(decodeModel(await exportOnnx(net)));
  const again = Net.build(imported.spec, { backend: new ReferenceBackend(), batch: imported.batch });
  again.loadParams(imported.params);
  again.setInput('data', data);
  again.forward();
  assertClose(await again.read(imported.outputs[0]!), expected, 1e-6, 1e-5, 'round trip');
});

test('onnxruntime-web runs the exported net to the same logits', async () => {
  ort.env.wasm.numThreads = 1;
  const { net, data, expected } = await logits(twoColumn, 2);
  const session = await ort.InferenceSession.create(await exportOnnx(net));
  const result = await session.run({ data: new ort.Tensor('float32', data, [2, 3, 35, 35]) });
  assertClose(result.fc7!.data as Float32Array, expected, 1e-5, 1e-4, 'onnxruntime-web');
});
