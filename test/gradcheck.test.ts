/**
 * Finite-difference gradient checks in float64 for every layer and configuration: the analytic
 * gradients from backward() against central differences of L = Σ r·y for a random r.
 */
import { test } from 'node:test';
import { type LayerSpec, Net, type NetSpec, Philox, ReferenceBackend } from '../src/index.js';
import { layerTypes } from '../src/layers/index.js';
import { assertClose, randomNormal } from './helpers.js';

const EPS = 1e-6;
/** Most elements checked per tensor (spread evenly), to keep the suite fast. */
const SAMPLES = 40;

/** Layer types a check has covered: the last test asserts that none is left out. */
const covered = new Set<string>();

async function gradcheck(
  spec: NetSpec,
  options: { batch?: number; training?: boolean; labels?: Record<string, number> } = {},
): Promise<void> {
  for (const layer of spec.layers) covered.add(layer.type);
  const net = Net.build(spec, {
    backend: new ReferenceBackend({ precision: 'float64' }),
    batch: options.batch ?? 2,
    seed: 3,
    inputGradients: true,
  });
  const rng = new Philox(11);
  for (const name of net.inputNames) {
    const size = net.shapeOf(name).reduce((a, b) => a * b, 1);
    const classes = options.labels?.[name];
    net.setInput(name, classes ? Array.from({ length: size }, () => rng.nextInt(classes)) : randomNormal(size, rng));
  }
  const weights = Object.fromEntries(
    net.outputNames.map((o) => [
      o,
      randomNormal(
        net.shapeOf(o).reduce((a, b) => a * b, 1),
        rng,
      ),
    ]),
  );
  const training = options.training ?? false;
  const randomState = net.randomState();
  const loss = (): number => {
    net.setRandomState(randomState); // the same dropout mask on every evaluation
    net.forward({ training });
    let total = 0;
    for (const [o, r] of Object.entries(weights))
      net.readSync(o).forEach((v, i) => {
        total += v * r[i]!;
      });
    return total;
  };
  loss();
  net.backward(weights);

  const check = (what: string, read: () => Float64Array, write: (v: Float64Array) => void, analytic: ArrayLike<number>) => {
    const values = read();
    const step = Math.max(1, Math.floor(values.length / SAMPLES));
    const indices: number[] = [],
      numeric: number[] = [],
      expected: number[] = [];
    for (let i = 0; i < values.length; i += step) {
      const original = values[i]!;
      values[i] = original + EPS;
      write(values);
      const plus = loss();
      values[i] = original - EPS;
      write(values);
      const minus = loss();
      values[i] = original;
      write(values);
      indices.push(i);
      numeric.push((plus - minus) / (2 * EPS));
      expected.push(analytic[i]!);
    }
    assertClose(expected, numeric, 1e-7, 1e-5, `${spec.name}: d/d${what} at indices ${indices.slice(0, 5).join(',')}…`);
  };
  for (const name of net.inputNames) {
    if (options.labels?.[name]) continue;
    const analytic = await net.readGrad(name);
    check(
      name,
      () => net.readSync(name) as Float64Array,
      (v) => net.setInput(name, v),
      analytic,
    );
  }
  for (const p of net.params) {
    check(
      p.name,
      () => p.value.readSync() as Float64Array,
      (v) => p.value.write(v),
      await p.grad.read(),
    );
  }
}

/** A layer spec without its name (distributes over the union). */
type Body = LayerSpec extends infer T ? (T extends LayerSpec ? Omit<T, 'name'> : never) : never;

function single(name: string, inputShape: number[], layer: Body): NetSpec {
  return { name, inputs: { x: inputShape }, layers: [{ name, ...layer } as LayerSpec] };
}

const cases: [string, number[], Body][] = [
  ['conv_3x3_pad1', [3, 6, 5], { type: 'conv2d', outChannels: 4, kernel: 3, pad: 1 }],
  ['conv_stride2_asymmetric_pad', [2, 7, 6], { type: 'conv2d', outChannels: 3, kernel: 3, stride: 2, pad: [1, 0, 2, 1] }],
  ['conv_groups2', [4, 5, 5], { type: 'conv2d', outChannels: 6, kernel: 3, pad: 1, groups: 2 }],
  ['conv_depthwise', [3, 5, 6], { type: 'conv2d', outChannels: 6, kernel: 3, groups: 3 }],
  ['conv_dilated_rect_no_bias', [2, 8, 7], { type: 'conv2d', outChannels: 2, kernel: [2, 3], stride: [2, 1], dilation: 2, bias: false }],
  ['conv_1x1', [5, 3, 3], { type: 'conv2d', outChannels: 2, kernel: 1 }],
  ['maxpool_3s2_floor', [2, 8, 7], { type: 'maxpool2d', kernel: 3, stride: 2 }],
  ['maxpool_3s2_ceil', [2, 8, 7], { type: 'maxpool2d', kernel: 3, stride: 2, ceil: true }],
  ['maxpool_padded', [2, 5, 6], { type: 'maxpool2d', kernel: 3, stride: 2, pad: 1 }],
  ['maxpool_dilated', [1, 7, 7], { type: 'maxpool2d', kernel: 2, stride: 1, dilation: 2 }],
  ['lrn_paper', [7, 3, 2], { type: 'lrn', size: 5, alpha: 0.1, beta: 0.75, k: 2 }],
  ['lrn_over_n', [7, 3, 2], { type: 'lrn', size: 5, alpha: 0.3, beta: 0.75, k: 1, alphaConvention: 'over-n' }],
  ['lrn_size3_2d_input', [6], { type: 'lrn', size: 3, alpha: 0.2, beta: 0.5, k: 1.5 }],
  ['relu', [3, 4, 4], { type: 'relu' }],
  ['tanh', [3, 4], { type: 'tanh' }],
  ['sigmoid', [3, 4], { type: 'sigmoid' }],
  ['linear', [7], { type: 'linear', outFeatures: 5 }],
  ['linear_from_4d_no_bias', [2, 3, 3], { type: 'linear', outFeatures: 4, bias: false }],
  ['flatten_axis2', [2, 3, 4], { type: 'flatten', axis: 2 }],
  ['adaptive_avgpool', [2, 5, 7], { type: 'adaptive_avgpool2d', output: [3, 2] }],
  ['adaptive_avgpool_identity', [2, 5, 7], { type: 'adaptive_avgpool2d', output: [5, 7] }],
  ['softmax', [5, 2], { type: 'softmax' }],
  ['log_softmax', [6], { type: 'log_softmax' }],
  ['log_softmax_trailing', [3, 2, 2], { type: 'log_softmax', axis: 1, over: 'trailing' }],
  ['split_axis1', [5, 2, 2], { type: 'split', sizes: [2, 3] }],
];

for (const [name, shape, layer] of cases) {
  test(`gradient check: ${name}`, () => gradcheck(single(name, shape, layer)));
}

test('gradient check: dropout in training mode (fixed seed)', () => {
  gradcheck(single('dropout', [4, 3], { type: 'dropout', p: 0.5 }), { training: true });
});

test('gradient check: concat of three inputs along channels and along width', async () => {
  for (const axis of [1, 3]) {
    await gradcheck({
      name: `concat_axis${axis}`,
      inputs: { a: [2, 3, 2], b: [axis === 1 ? 1 : 2, 3, axis === 3 ? 4 : 2], c: [2, 3, 2] },
      layers: [{ name: 'cat', type: 'concat', axis, inputs: ['a', 'b', 'c'] }],
    });
  }
});

test('gradient check: softmax cross-entropy (labels take no gradient)', () => {
  gradcheck(
    {
      name: 'softmax_cross_entropy',
      inputs: { logits: [5], labels: [] },
      layers: [{ name: 'loss', type: 'softmax_cross_entropy', inputs: ['logits', 'labels'] }],
    },
    { batch: 3, labels: { labels: 5 } },
  );
});

test('gradient check: a small two-column net with LRN, overlapping pools, dropout, a branch and a loss', () => {
  gradcheck(
    {
      name: 'tiny_alexnet',
      inputs: { data: [3, 11, 11], label: [] },
      layers: [
        { name: 'conv1', type: 'conv2d', outChannels: 4, kernel: 3, stride: 1, pad: 1 },
        { name: 'relu1', type: 'relu' },
        { name: 'norm1', type: 'lrn', size: 3, alpha: 0.5, beta: 0.75, k: 2 },
        { name: 'pool1', type: 'maxpool2d', kernel: 3, stride: 2, ceil: true },
        { name: 'conv2', type: 'conv2d', outChannels: 4, kernel: 3, pad: 1, groups: 2 },
        { name: 'columns', type: 'split', sizes: [2, 2] },
        { name: 'left', type: 'tanh', inputs: ['columns:0'] },
        { name: 'merge', type: 'concat', inputs: ['left', 'columns:1', 'conv2'] },
        { name: 'fc', type: 'linear', outFeatures: 6 },
        { name: 'drop', type: 'dropout', p: 0.3 },
        { name: 'out', type: 'linear', outFeatures: 3 },
        { name: 'loss', type: 'softmax_cross_entropy', inputs: ['out', 'label'] },
      ],
    },
    { batch: 2, training: true, labels: { label: 3 } },
  );
});

test('every layer type of the registry has a gradient check', () => {
  const missing = layerTypes.filter((type) => !covered.has(type));
  if (missing.length > 0) throw new Error(`no gradient check for ${missing.join(', ')}: add a case to test/gradcheck.test.ts`);
});
