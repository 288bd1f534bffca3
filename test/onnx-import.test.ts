/**
 * ONNX files as PyTorch users export them (tools/make_interop_fixtures.py, Debian's PyTorch): a
 * scaled-down torchvision AlexNet at opsets 9–17, with an equal pair of biases shared through
 * Identity nodes, adaptive pooling exported as AveragePool (1×1 or 2×2 windows) or
 * GlobalAveragePool, and the flatten as Reshape or Flatten; and the zoo's layouts (two columns,
 * LocalResponseNorm, which PyTorch decomposes into 20–40 nodes, ceil pooling). Imported, our
 * logits equal PyTorch's, and the parameters keep the file's own names.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Net, ReferenceBackend } from '../src/index.js';
import { parseNpy } from '../src/io/npy.js';
import { importOnnx, loadOnnxFile } from '../src/onnx/import.js';
import { decodeModel } from '../src/onnx/proto.js';
import { assertClose } from './helpers.js';

const DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'onnx-torch');
const input = parseNpy(readFileSync(join(DIR, 'input.npy')), 'input.npy');
const smallInput = parseNpy(readFileSync(join(DIR, 'input_small.npy')), 'input_small.npy');

/** The imported model's output for `x`. */
async function run(imported: ReturnType<typeof importOnnx>, x: Float32Array) {
  const net = Net.build(imported.spec, { backend: new ReferenceBackend(), batch: imported.batch });
  net.loadParams(imported.params);
  net.setInput('data', x);
  net.forward();
  return net.read(imported.outputs[0]!);
}

for (const file of readdirSync(DIR)
  .filter((f) => f.endsWith('.onnx'))
  .sort()) {
  test(`PyTorch's ONNX export ${file} imports and runs to PyTorch's logits`, async () => {
    const path = join(DIR, file);
    const imported = loadOnnxFile(path);
    const net = Net.build(imported.spec, { backend: new ReferenceBackend(), batch: imported.batch });
    net.loadParams(imported.params);
    assert.ok('features.0.weight' in imported.params && 'classifier.6.bias' in imported.params, Object.keys(imported.params).join(', '));
    const layout = file.split('_')[1]!;
    if (file.startsWith('zoo_')) {
      const lrn = imported.spec.layers.filter((l) => l.type === 'lrn');
      assert.equal(lrn.length, 2, "PyTorch's decomposed LocalResponseNorm imports as two LRN layers");
    }
    net.setInput('data', layout === 'small' ? smallInput.data : input.data);
    net.forward();
    const expected = parseNpy(readFileSync(join(DIR, `logits_${layout}.npy`)), 'logits');
    assertClose(await net.read(imported.outputs[0]!), expected.data, 1e-5, 1e-4, file);
    const ops = new Set((decodeModel(readFileSync(path), file).graph!.node ?? []).map((n) => n.opType));
    if (file.includes('pool3')) assert.ok(ops.has('AveragePool'), `${file} has an AveragePool: ${[...ops]}`);
  });
}

test('an unsupported graph is refused with every unsupported node listed', () => {
  const path = join(DIR, 'alexnet_pool6_opset13.onnx');
  const model = decodeModel(readFileSync(path), path);
  const nodes = model.graph!.node!;
  nodes[1]!.opType = 'Gelu';
  nodes[4]!.opType = 'HardSwish';
  nodes[4]!.name = 'swish';
  assert.throws(
    () => importOnnx(model, { source: 'm.onnx' }),
    /^UnsupportedOnnxError: m\.onnx: unsupported operators \(supported: .*\): Gelu '[^']*', HardSwish 'swish'$/,
  );
});

test('a Constant shape and a Reshape to [batch, features] (older exporters) import as a flatten', async () => {
  const path = join(DIR, 'alexnet_pool6_opset13.onnx');
  const model = decodeModel(readFileSync(path), path);
  const nodes = model.graph!.node!;
  const flatten = nodes.findIndex((n) => n.opType === 'Flatten');
  const shape = { name: 'value', type: 4, t: { dims: [2], dataType: 7, int64Data: [0, -1] } };
  nodes.splice(
    flatten,
    1,
    { name: 'shape', opType: 'Constant', output: ['flat_shape'], attribute: [shape] },
    {
      ...nodes[flatten]!,
      opType: 'Reshape',
      input: [nodes[flatten]!.input![0]!, 'flat_shape'],
      attribute: [],
    },
  );
  const imported = importOnnx(model, { source: path });
  assert.equal(imported.spec.layers.filter((l) => l.type === 'flatten').length, 1);
  const expected = parseNpy(readFileSync(join(DIR, 'logits_pool6.npy')), 'logits');
  assertClose(await run(imported, input.data), expected.data, 1e-5, 1e-4, 'Reshape form');
});

test('opset 18 (newer exporters): the opset-17 export relabelled, whose operators did not change in 18, imports alike', async () => {
  const path = join(DIR, 'zoo_paper_opset17.onnx');
  const model = decodeModel(readFileSync(path), path);
  model.opsetImport = [{ domain: '', version: 18 }];
  const expected = parseNpy(readFileSync(join(DIR, 'logits_paper.npy')), 'logits');
  assertClose(await run(importOnnx(model, { source: 'opset18.onnx' }), input.data), expected.data, 1e-5, 1e-4, 'opset 18');
});

test("an unread second output (Dropout's mask, MaxPool's indices) is dropped; one a node reads is refused, naming it", async () => {
  const path = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'onnx-caffe', 'bvlc_alexnet_small_opset3.onnx');
  const masked = decodeModel(readFileSync(path), path);
  const nodes = masked.graph!.node!;
  assert.deepEqual(
    nodes.filter((n) => n.opType === 'Dropout').map((n) => n.output),
    [
      ['fc6_3', '_fc6_mask_1'],
      ['fc7_3', '_fc7_mask_1'],
    ],
    "Caffe2's layout: every mask named",
  );
  const pool = nodes.find((n) => n.opType === 'MaxPool')!;
  pool.output = [...pool.output!, 'pool1_indices'];
  const imported = importOnnx(masked, { source: 'zoo.onnx' });
  assert.deepEqual(
    imported.spec.layers.filter((l) => l.type === 'dropout').map((l) => l.outputs),
    [['fc6_3'], ['fc7_3']],
  );

  const read = decodeModel(readFileSync(path), path);
  const softmax = read.graph!.node!.find((n) => n.opType === 'Softmax')!;
  softmax.input = ['_fc7_mask_1'];
  softmax.name = 'uses_mask';
  assert.throws(
    () => importOnnx(read, { source: 'zoo.onnx' }),
    /^UnsupportedOnnxError: zoo\.onnx: Dropout node 'fc7_3': its output 2 '_fc7_mask_1' is read by Softmax node 'uses_mask'; the engine computes a node's first output only$/,
  );
  const output = decodeModel(readFileSync(path), path);
  output.graph!.output!.push({ ...output.graph!.output![0]!, name: '_fc6_mask_1' });
  assert.throws(() => importOnnx(output, { source: 'zoo.onnx' }), /'_fc6_mask_1' is read by the graph \(one of its outputs\)/);
});
