import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  alexnet,
  alexnetCaffe,
  alexnetSmall,
  alexnetTorchvision,
  formatSummary,
  type LayerSpec,
  Net,
  type NetSpec,
  Philox,
  planNet,
  ReferenceBackend,
  summarize,
} from '../src/index.js';
import { Sgd } from '../src/train/sgd.js';
import { WasmBackend } from '../src/backend/wasm/backend.js';

const total = (spec: NetSpec, key: 'params' | 'macsPerExample') => summarize(planNet(spec, 1)).reduce((n, r) => n + r[key], 0);

test('the paper net: 60,965,224 parameters, 55×55 conv1 maps, 6×6×256 into fc6, at 224 and at 227', () => {
  for (const inputSize of [224, 227] as const) {
    const rows = summarize(planNet(alexnet({ inputSize }), 1));
    const shape = (name: string) => rows.find((r) => r.name === name)!.outputShapes[0];
    assert.deepEqual(shape('conv1'), [1, 96, 55, 55]);
    assert.deepEqual(shape('pool1'), [1, 96, 27, 27]);
    assert.deepEqual(shape('pool2'), [1, 256, 13, 13]);
    assert.deepEqual(shape('pool5'), [1, 256, 6, 6]);
    assert.deepEqual(shape('fc8'), [1, 1000]);
    assert.equal(
      rows.reduce((n, r) => n + r.params, 0),
      60_965_224,
    );
  }
  // 1.449 GFLOP per image forward (../shared/measurements.md) = 0.7245 G multiply-adds
  const macs = total(alexnet({ inputSize: 227 }), 'macsPerExample');
  assert.ok(Math.abs(macs / 0.7245e9 - 1) < 0.002, `${macs} multiply-adds`);
});

test('the torchvision variant has 61,100,840 parameters, as torchvision.models.alexnet', () => {
  assert.equal(total(alexnetTorchvision(), 'params'), 61_100_840);
});

test("Caffe's bvlc_alexnet layout: the paper's parameters, 227 input, ceil pools still reaching 6×6", () => {
  const rows = summarize(planNet(alexnetCaffe(), 1));
  assert.equal(
    rows.reduce((n, r) => n + r.params, 0),
    60_965_224,
  );
  assert.deepEqual(rows.find((r) => r.name === 'pool5')!.outputShapes[0], [1, 256, 6, 6]);
});

test('the summary table lists every layer and the totals', () => {
  const text = formatSummary(summarize(planNet(alexnet(), 2)));
  assert.match(text, /^layer\s+type\s+output\s+params\s+mult-adds\/example$/m);
  assert.match(text, /^conv2\s+conv2d\s+\[2, 256, 27, 27\]\s+307,456\s+223,948,800$/m);
  assert.match(text, /^total\s+60,965,224\s/m);
});

function specWith(...layers: object[]): NetSpec {
  return { inputs: { data: [96, 8, 8] }, layers: layers as LayerSpec[] };
}

const badSpecs: [string, NetSpec, RegExp][] = [
  [
    'groups that do not divide the channels',
    specWith({ name: 'conv2', type: 'conv2d', outChannels: 10, kernel: 3, groups: 5 }),
    /^conv2: 96 input channels are not divisible by groups=5$/,
  ],
  [
    'a kernel larger than the input',
    specWith({ name: 'conv1', type: 'conv2d', outChannels: 4, kernel: 11 }),
    /^conv1: a 11×11 kernel \(dilation 1×1\) does not fit the padded 8×8 input$/,
  ],
  ['an unknown layer type', specWith({ name: 'c', type: 'convolution' }), /^c: unknown layer type "convolution"/],
  [
    'a misspelt field',
    specWith({ name: 'conv1', type: 'conv2d', outChannels: 4, kernel: 3, strid: 2 }),
    /^conv1: unknown field 'strid' for a conv2d layer/,
  ],
  ['a missing field', specWith({ name: 'fc', type: 'linear' }), /^fc: outFeatures must be an integer ≥ 1, got undefined$/],
  [
    'an input nobody produces',
    specWith({ name: 'relu', type: 'relu', inputs: ['conv9'] }),
    /^relu: input 'conv9' is not a net input or an earlier layer's output$/,
  ],
  ['a name used twice', specWith({ name: 'a', type: 'relu' }, { name: 'a', type: 'relu' }), /^layer #2: the name 'a' is used twice$/],
  ['an even LRN size', specWith({ name: 'norm1', type: 'lrn', size: 4, alpha: 1e-4, beta: 0.75, k: 2 }), /^norm1: size must be odd/],
  [
    'pool padding as large as the window',
    specWith({ name: 'pool1', type: 'maxpool2d', kernel: 2, pad: 2 }),
    /^pool1: padding 2 must be smaller than the 2×2 window/,
  ],
  [
    'split sizes that do not add up',
    specWith({ name: 's', type: 'split', sizes: [40, 40] }),
    /^s: sizes \[40,40\] add up to 80, but axis 1 has 96$/,
  ],
  [
    'a concat of mismatched shapes',
    { inputs: { a: [2, 3, 3], b: [2, 4, 4] }, layers: [{ name: 'cat', type: 'concat', inputs: ['a', 'b'] }] },
    /^cat: input 1 \[1, 2, 4, 4\] does not match \[1, 2, 3, 3\] outside axis 1$/,
  ],
  [
    'a conv over a flat input',
    { inputs: { x: [10] }, layers: [{ name: 'conv1', type: 'conv2d', outChannels: 1, kernel: 1 }] },
    /^conv1: expects a 4-d input \[N, C, H, W\], got \[1, 10\]$/,
  ],
  [
    'labels of the wrong shape',
    { inputs: { x: [10], y: [10] }, layers: [{ name: 'loss', type: 'softmax_cross_entropy', inputs: ['x', 'y'] }] },
    /^loss: expects labels \[1\] \(one class index per example\), got \[1, 10\]$/,
  ],
  ['no layers', { inputs: { x: [1] }, layers: [] }, /"layers" must be a non-empty list/],
  [
    'a bad input shape',
    { inputs: { x: [3, 0] }, layers: [{ name: 'r', type: 'relu' }] },
    /^input 'x': shape must be a list of positive integers, got \[3,0\]$/,
  ],
];

for (const [what, spec, message] of badSpecs) {
  test(`a spec with ${what} is refused with a clear message`, () => {
    assert.throws(
      () => Net.build(spec, { backend: new ReferenceBackend(), batch: 1 }),
      (error: Error) => error.name === 'SpecError' && message.test(error.message),
    );
  });
}

test('a batch size of 0 is refused', () => {
  assert.throws(
    () => Net.build(specWith({ name: 'r', type: 'relu' }), { backend: new ReferenceBackend(), batch: 0 }),
    /batch size must be a positive integer, got 0/,
  );
});

const dropoutNet: NetSpec = { inputs: { x: [1000] }, layers: [{ name: 'drop', type: 'dropout', p: 0.4 }] };

test('dropout: the same seed gives the same masks, a fresh forward a new one; evaluation is the identity', async () => {
  const ones = new Float32Array(2000).fill(1);
  const run = async (seed: number, steps: number) => {
    const net = Net.build(dropoutNet, { backend: new ReferenceBackend(), batch: 2, seed });
    net.setInput('x', ones);
    const outputs = [];
    for (let i = 0; i < steps; i++) {
      net.forward({ training: true });
      outputs.push(await net.read('drop'));
    }
    net.forward({ training: false });
    assert.deepEqual(await net.read('drop'), ones);
    return outputs;
  };
  const [a1, a2] = await run(5, 2);
  const [b1] = await run(5, 1);
  assert.deepEqual(a1, b1);
  assert.notDeepEqual(a1, a2);
  const kept = a1!.filter((v) => v !== 0);
  assert.ok(
    kept.every((v) => Math.abs(v - 1 / 0.6) < 1e-6),
    'survivors are scaled by 1/(1−p)',
  );
  assert.ok(Math.abs(kept.length / 2000 - 0.6) < 0.04, `kept ${kept.length} of 2000 at p = 0.4`);
});

test('parameters are read and written by name, with checks', async () => {
  const net = Net.build(
    { inputs: { x: [3] }, layers: [{ name: 'fc', type: 'linear', outFeatures: 2 }] },
    { backend: new ReferenceBackend(), batch: 1 },
  );
  assert.deepEqual(
    net.params.map((p) => p.name),
    ['fc.weight', 'fc.bias'],
  );
  net.loadParams({ 'fc.weight': [1, 2, 3, 4, 5, 6], 'fc.bias': [0.5, -0.5] });
  net.setInput('x', [1, 1, 1]);
  net.forward();
  assert.deepEqual([...(await net.read('fc'))], [6.5, 14.5]);
  assert.deepEqual([...(await net.readParams())['fc.bias']!], [0.5, -0.5]);
  assert.throws(
    () => net.loadParams({ 'fc.weight': [1, 2, 3] }, { strict: false }),
    /parameter 'fc.weight' needs 6 values \(shape \[2, 3\]\), got 3/,
  );
  assert.throws(() => net.loadParams({ 'fc.weight': [1, 2, 3, 4, 5, 6] }), /parameter 'fc.bias' is missing/);
  assert.throws(() => net.loadParams({ 'fc8.weight': [] }), /parameter 'fc8.weight' does not exist/);
  assert.throws(() => net.setInput('x', [1, 2]), /input 'x' needs 3 values \(shape \[1, 3\]\), got 2/);
  assert.throws(() => net.setInput('data', [1]), /'data' is not an input of the net/);
});

test('a net built with weights holds them, not an initialisation; wrong weights are refused and nothing stays allocated', async () => {
  const spec: NetSpec = { inputs: { x: [3] }, layers: [{ name: 'fc', type: 'linear', outFeatures: 2 }] };
  const backend = await WasmBackend.create({ threads: 1 });
  const weights = { 'fc.weight': { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, 'fc.bias': { shape: [2], data: [0.5, -0.5] } };
  const net = Net.build(spec, { backend, batch: 1, weights });
  assert.deepEqual([...(await net.readParams())['fc.weight']!], [1, 2, 3, 4, 5, 6]);
  net.dispose();
  const before = backend.allocatedBytes;
  const misshapen = { ...weights, 'fc.bias': { shape: [1, 2], data: [0.5, -0.5] } };
  assert.throws(() => Net.build(spec, { backend, batch: 1, weights: misshapen }), /parameter 'fc.bias' is \[1, 2\], the net's is \[2\]/);
  assert.throws(() => Net.build(spec, { backend, batch: 1, weights: { 'fc.weight': weights['fc.weight'] } }), /'fc.bias' is missing/);
  assert.equal(backend.allocatedBytes, before);
  await backend.dispose();
});

test('a net built for inference computes what a trainable one does, in the memory of its values alone; gradients are refused', async () => {
  const spec = alexnetSmall({ inputSize: 28, channels: 1, classes: 10 });
  const backend = await WasmBackend.create({ threads: 1 });
  const x = Float32Array.from({ length: 3 * 28 * 28 }, (_, i) => Math.sin(i));
  const logits = async (net: Net) => {
    net.setInput('data', x);
    net.forward();
    return Float32Array.from(await net.read('fc8'));
  };
  const trainable = Net.build(spec, { backend, batch: 3, seed: 5 });
  const expected = await logits(trainable);
  const before = backend.allocatedBytes; // the backend's scratch has grown to what a forward pass needs
  const inference = Net.build(spec, { backend, batch: 3, seed: 5, inference: true });
  assert.deepEqual(await logits(inference), expected);
  const values = [...Object.values(await trainable.readParams())].reduce((n, v) => n + 4 * v.length, 0);
  // A trainable net holds each parameter twice (value, gradient) and most activations twice; an inference net once.
  assert.ok(inference.plannedBytes() < trainable.plannedBytes() - values, `${inference.plannedBytes()} of ${trainable.plannedBytes()}`);
  const refused = /built for inference \(no gradients\)/;
  assert.throws(() => inference.backward(), refused);
  assert.throws(() => inference.readGrad('fc8'), refused);
  assert.throws(() => inference.params[0]!.grad, refused);
  assert.throws(() => new Sgd(inference, { lr: 0.1 }), /built for inference \(no gradients\) and cannot be trained/);
  assert.throws(() => Net.build(spec, { backend, batch: 1, inference: true, inputGradients: true }), /keeps no input gradients/);
  inference.dispose();
  assert.equal(backend.allocatedBytes, before);
  trainable.dispose();
  await backend.dispose();
});

test('a label outside the classes is reported with its position', () => {
  const net = Net.build(
    { inputs: { x: [3], y: [] }, layers: [{ name: 'loss', type: 'softmax_cross_entropy', inputs: ['x', 'y'] }] },
    { backend: new ReferenceBackend(), batch: 2 },
  );
  net.setInput('x', [0, 0, 0, 0, 0, 0]);
  net.setInput('y', [1, 3]);
  assert.throws(() => net.forward(), /label 3 at batch index 1 is not a class in \[0, 3\)/);
});

test('initialisation is reproducible from the seed and differs across seeds', async () => {
  const spec: NetSpec = { inputs: { x: [4] }, layers: [{ name: 'fc', type: 'linear', outFeatures: 3 }] };
  const w = async (seed: number) => (await Net.build(spec, { backend: new ReferenceBackend(), batch: 1, seed }).readParams())['fc.weight'];
  assert.deepEqual(await w(1), await w(1));
  assert.notDeepEqual(await w(1), await w(2));
  assert.ok(
    (await w(1))!.every((v) => Math.abs(v) <= 0.5),
    'PyTorch default: |w| ≤ 1/√fanIn',
  );
});

test('freeze: backward skips the frozen stack below the trained layers, their gradients unchanged', async () => {
  const spec = alexnetSmall({ inputSize: 28, channels: 1, classes: 10 });
  const full = Net.build(spec, { backend: new ReferenceBackend(), batch: 2, seed: 3 }),
    tuned = Net.build(spec, { backend: new ReferenceBackend(), batch: 2, seed: 3 });
  const rng = new Philox(5);
  const x = Float32Array.from({ length: 2 * 28 * 28 }, () => rng.nextNormal());
  for (const net of [full, tuned]) {
    net.setInput('data', x);
    net.setInput('label', [3, 7]);
  }
  const frozen = ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'fc6'];
  tuned.freeze(frozen);
  for (const net of [full, tuned]) {
    net.forward({ training: false });
    net.backward();
  }
  for (const name of ['fc7.weight', 'fc7.bias', 'fc8.weight', 'fc8.bias'])
    assert.deepEqual(await tuned.param(name).grad.read(), await full.param(name).grad.read(), name);
  const untouched = await tuned.param('conv1.weight').grad.read();
  assert.ok(
    untouched.every((g) => g === 0),
    'no gradient computed for a frozen layer',
  );
  assert.ok((await full.param('conv1.weight').grad.read()).some((g) => g !== 0));
});
