/**
 * Random small nets — convolutions of random kernels, strides, dilations, groups and (asymmetric)
 * padding, with ReLU, tanh, sigmoid, LRN, max-pooling and two-column split/concat blocks between
 * them, an adaptive average pool, one or two linear layers (dropout between them) and a loss — at
 * batch sizes from 1 to 33, on every backend against the reference: every blob after a forward pass,
 * and every gradient after a backward pass, through two training steps with an update between them.
 * The layer-level suites check kernels one at a time; this one checks what only a net exercises: the
 * native backend's blocked layouts carried from layer to layer and made NCHW where a consumer needs
 * them, its strips of small maps, its cached weight copies after an update, its linear layers as
 * 1×1 convolutions.
 */
import { test } from 'node:test';
import { type LayerSpec, Net, type NetSpec, Philox, ReferenceBackend } from '../src/index.js';
import { testBackends } from './backends.js';
import { assertClose, withEnv } from './helpers.js';

const NETS = 24;

/** A random net over a random input, its shapes tracked so that every layer fits. */
function randomNet(rng: Philox): { spec: NetSpec; classes: number; batch: number } {
  const pick = <T>(options: readonly T[]): T => options[rng.nextInt(options.length)]!;
  let [channels, height, width] = [pick([1, 3, 8, 16]), pick([5, 7, 9, 13, 16, 20]), pick([6, 11, 14, 16])];
  const input = [channels, height, width];
  const layers: LayerSpec[] = [];
  const name = (kind: string) => `${kind}${layers.length}`;
  for (let convolutions = 1 + rng.nextInt(4); convolutions > 0; convolutions--) {
    const groups = layers.length > 0 && channels % 2 === 0 ? pick([1, 1, 2]) : 1;
    const outChannels = pick([8, 16, 24, 32]);
    const [kh, kw] = pick([
      [1, 1],
      [3, 3],
      [3, 3],
      [5, 5],
      [3, 1],
      [2, 3],
    ] as const);
    const [stride, dilation] = [pick([1, 1, 1, 2]), pick([1, 1, 1, 2])];
    const pad = pick<[number, number, number, number]>([
      [0, 0, 0, 0],
      [1, 1, 1, 1],
      [2, 2, 2, 2],
      [0, 1, 1, 0],
      [1, 2, 0, 1],
    ]);
    const [top, left, bottom, right] = pad;
    const outHeight = Math.floor((height + top + bottom - (kh - 1) * dilation - 1) / stride) + 1;
    const outWidth = Math.floor((width + left + right - (kw - 1) * dilation - 1) / stride) + 1;
    if (outHeight < 1 || outWidth < 1) continue;
    const bias = rng.nextFloat() < 0.8;
    layers.push({ name: name('conv'), type: 'conv2d', outChannels, kernel: [kh, kw], stride, pad, dilation, groups, bias });
    [channels, height, width] = [outChannels, outHeight, outWidth];
    const after = pick(['relu', 'relu', 'none', 'lrn', 'pool', 'relu+pool', 'tanh', 'sigmoid', 'branches'] as const);
    if (after.startsWith('relu')) layers.push({ name: name('relu'), type: 'relu' });
    if (after === 'tanh' || after === 'sigmoid') layers.push({ name: name(after), type: after });
    if (after === 'lrn') layers.push({ name: name('lrn'), type: 'lrn', size: 5, alpha: 1e-2, beta: 0.75, k: 2 });
    if (after === 'branches' && channels % 2 === 0) {
      // Two columns, as the paper's: the channels split in halves, each convolved on its own, joined again.
      const [split, left] = [name('split'), name('conv')];
      layers.push({ name: split, type: 'split', axis: 1, sizes: [channels / 2, channels / 2] });
      layers.push({ name: left, type: 'conv2d', inputs: [`${split}:0`], outChannels: 8, kernel: 3, pad: 1 });
      const leftOut = name('relu');
      layers.push({ name: leftOut, type: 'relu' });
      const right = name('conv');
      layers.push({ name: right, type: 'conv2d', inputs: [`${split}:1`], outChannels: 16, kernel: 1 });
      layers.push({ name: name('concat'), type: 'concat', inputs: [leftOut, right] });
      channels = 24;
    }
    if (after.endsWith('pool') && height >= 3 && width >= 3) {
      const ceil = rng.nextFloat() < 0.5;
      layers.push({ name: name('pool'), type: 'maxpool2d', kernel: 3, stride: 2, ceil });
      const size = (n: number) => (ceil ? Math.ceil((n - 3) / 2) : Math.floor((n - 3) / 2)) + 1;
      [height, width] = [size(height), size(width)];
    }
  }
  if (rng.nextFloat() < 0.3) layers.push({ name: 'avgpool', type: 'adaptive_avgpool2d', output: pick([1, 2, 3]) });
  let classes = pick([5, 10, 64]);
  layers.push({ name: 'fc', type: 'linear', outFeatures: classes });
  if (rng.nextFloat() < 0.5) {
    classes = 7;
    layers.push({ name: 'fc_relu', type: 'relu' });
    if (rng.nextFloat() < 0.5) layers.push({ name: 'drop', type: 'dropout', p: 0.3 });
    layers.push({ name: 'fc2', type: 'linear', outFeatures: classes });
  }
  layers.push({ name: 'loss', type: 'softmax_cross_entropy', inputs: [layers.at(-1)!.name, 'label'] });
  return { spec: { inputs: { data: input, label: [] }, layers }, classes, batch: pick([1, 2, 3, 5, 17, 18, 33]) };
}

/** Every blob after each forward pass and every gradient after each backward pass, over two steps. */
async function trainTwoSteps(net: Net, data: Float32Array, labels: Float32Array): Promise<Map<string, Float32Array>> {
  const blobs = net.layers.flatMap((l) => net.layerOutputs(l.name));
  const seen = new Map<string, Float32Array>();
  net.setInput('data', data);
  net.setInput('label', labels);
  for (const step of [1, 2]) {
    net.forward({ training: true });
    for (const blob of blobs) seen.set(`step ${step}: ${blob}`, Float32Array.from(await net.read(blob)));
    net.backward();
    for (const p of net.params) seen.set(`step ${step}: d${p.name}`, Float32Array.from(await p.grad.read()));
    for (const p of net.params) {
      const [value, grad] = [await p.value.read(), await p.grad.read()];
      p.value.write(Float32Array.from(value, (v, i) => v - 0.1 * grad[i]!));
    }
  }
  return seen;
}

test('random nets: every blob and gradient over two training steps match the reference on every backend', async () => {
  const rng = new Philox(7);
  const backends = (await testBackends()).filter((b) => !(b.backend instanceof ReferenceBackend));
  for (let n = 0; n < NETS; n++) {
    const { spec, classes, batch } = randomNet(rng);
    const inputSize = spec.inputs.data!.reduce((a, b) => a * b);
    const data = Float32Array.from({ length: batch * inputSize }, () => rng.nextNormal());
    const labels = Float32Array.from({ length: batch }, () => rng.nextInt(classes));
    const run = async (backend = new ReferenceBackend() as Net['backend']) => {
      const net = Net.build(spec, { backend, batch, seed: 3 });
      const seen = await trainTwoSteps(net, data, labels);
      net.dispose();
      return seen;
    };
    const expected = await run();
    const layers = spec.layers.map((l) => JSON.stringify(l)).join(' ');
    for (const { name, backend } of backends) {
      // Strips of small maps forced on: by default they run only on 8-channel blocks (AVX2).
      for (const [what, values] of await withEnv('ALEXNET_DNNL_STRIPS', 'on', () => run(backend))) {
        const scale = expected.get(what)!.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3);
        assertClose(values, expected.get(what)!, 2e-5 * scale + 1e-6, 2e-4, `net ${n} (batch ${batch}, ${layers}) ${what} [${name}]`);
      }
    }
  }
});
