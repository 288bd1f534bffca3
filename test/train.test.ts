/** The training system: the update rule, schedules, dataset readers, checkpoints, exact resume. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Net, type NetSpec, Philox, ReferenceBackend, Sgd } from '../src/index.js';
import { datasetClassNames, loadDataset, loadSplit, parseClassNames, type ImageSet } from '../src/data/dataset.js';
import { parseIdx } from '../src/data/idx.js';
import { cropAndFlip } from '../src/data/augment.js';
import { colourComponents, imageSetBatches } from '../src/data/batches.js';
import { readCheckpoint, writeCheckpoint } from '../src/net/checkpoint.js';
import { afterEpoch, initialScheduleState, learningRateAt, parseSchedule } from '../src/train/schedule.js';
import { divergenceBound, evaluate, MemoryRun, train } from '../src/train/trainer.js';
import { classesAbove } from '../src/train/evaluate.js';
import { setUpRun } from '../src/train/setup.js';
import { resolveModel } from '../src/models/index.js';
import { specClasses } from '../src/net/roles.js';
import { idx } from './helpers.js';
import { tinyColumns as tinySpec } from './specs.js';

test("SGD applies the paper's update rule exactly", async () => {
  const net = Net.build(
    { inputs: { x: [2] }, layers: [{ name: 'fc', type: 'linear', outFeatures: 1, bias: false }] },
    { batch: 1, backend: new ReferenceBackend({ precision: 'float64' }) },
  );
  net.loadParams({ 'fc.weight': [1, 2] });
  const sgd = new Sgd(net, { lr: 0.1, momentum: 0.9, weightDecay: 0.0005 });
  sgd.velocities[0]!.write([0.1, 0]);
  net.param('fc.weight').grad.write([0.5, -1]);
  sgd.step();
  // v ← 0.9·v − 0.0005·0.1·w − 0.1·g ; w ← w + v
  const v = [0.9 * 0.1 - 0.00005 * 1 - 0.05, 0 - 0.00005 * 2 + 0.1];
  assert.deepEqual([...(await sgd.velocities[0]!.read())], v);
  assert.deepEqual([...(await net.param('fc.weight').value.read())], [1 + v[0]!, 2 + v[1]!]);
});

test('crop-and-flip: every image is a shifted (and maybe mirrored) copy, the border filled; every shift occurs', () => {
  const [C, H, W] = [2, 3, 4],
    size = C * H * W,
    count = 400,
    pad = 1,
    fill = -7;
  const source = Float32Array.from({ length: size }, (_, i) => i + 1);
  const batch = new Float32Array(count * size);
  for (let b = 0; b < count; b++) batch.set(source, b * size);
  cropAndFlip(batch, count, [C, H, W], pad, fill, true, (b) => new Philox(3, b), new Float32Array(size));
  const seen = new Set<string>();
  for (let b = 0; b < count; b++) {
    const image = batch.subarray(b * size, (b + 1) * size);
    const explained = [];
    for (const mirror of [false, true])
      for (let dy = -pad; dy <= pad; dy++)
        for (let dx = -pad; dx <= pad; dx++) {
          const expected = Float32Array.from({ length: size }, (_, i) => {
            const c = Math.floor(i / (H * W)),
              y = Math.floor(i / W) % H,
              x = i % W;
            const sy = y + dy,
              sx = (mirror ? W - 1 - x : x) + dx;
            return sy >= 0 && sy < H && sx >= 0 && sx < W ? source[(c * H + sy) * W + sx]! : fill;
          });
          if (expected.every((v, i) => v === image[i])) explained.push(`${mirror} ${dy} ${dx}`);
        }
    assert.equal(explained.length, 1, `image ${b} is no single crop of the source`);
    seen.add(explained[0]!);
  }
  assert.equal(seen.size, 2 * (2 * pad + 1) ** 2);
});

test("augmentation: an example's crop, flip and colour noise are the same whichever slice of the batch is filled", () => {
  const rng = new Philox(5);
  const shape: [number, number, number] = [3, 6, 5];
  const size = shape[0] * shape[1] * shape[2],
    count = 24;
  const set: ImageSet = {
    pixels: Uint8Array.from({ length: count * size }, () => rng.nextInt(256)),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 4),
    shape,
    classes: 4,
    source: 'random colour images',
  };
  const source = imageSetBatches(set, 100, 60, { pad: 2, flip: true, pca: { sigma: 0.3, components: colourComponents(set) } });
  const order = Uint32Array.from({ length: count }, (_, i) => (i * 7) % count);
  const fill = (from: number, to: number) => {
    const x = new Float32Array((to - from) * size),
      y = new Float32Array(to - from);
    source.fill(order, from, to, x, y, { seed: 3, epoch: 1, position: from });
    return { x, y };
  };
  const whole = fill(8, 20);
  for (const [from, to] of [
    [8, 11],
    [11, 20],
    [13, 14],
  ] as const) {
    const slice = fill(from, to);
    assert.deepEqual(slice.x, whole.x.subarray((from - 8) * size, (to - 8) * size), `examples ${from}…${to}`);
    assert.deepEqual(slice.y, whole.y.subarray(from - 8, to - 8));
  }
  const other = new Float32Array(size);
  source.fill(order, 8, 9, other, new Float32Array(1), { seed: 3, epoch: 2, position: 8 });
  assert.notDeepEqual(other, whole.x.subarray(0, size), 'another epoch, another presentation');
});

test('class names: a class-names.txt, CIFAR-10 meta, Fashion-MNIST by folder name, a --class-names list', () => {
  const base = mkdtempSync(join(tmpdir(), 'names-'));
  const plain = join(base, 'digits'),
    fashion = join(base, 'fashion-mnist'),
    cifar = join(base, 'cifar-10-batches-bin');
  for (const dir of [plain, fashion, cifar]) mkdirSync(dir);
  assert.equal(datasetClassNames(plain), undefined);
  assert.deepEqual(datasetClassNames(fashion + '/')?.slice(0, 2), ['T-shirt/top', 'Trouser']);
  writeFileSync(join(cifar, 'batches.meta.txt'), 'airplane\nautomobile\n\n');
  assert.deepEqual(datasetClassNames(cifar), ['airplane', 'automobile']);
  writeFileSync(join(plain, 'class-names.txt'), 'zero\n one \n');
  assert.deepEqual(datasetClassNames(plain), ['zero', 'one']);
  assert.deepEqual(parseClassNames('a, b,c'), ['a', 'b', 'c']);
  assert.deepEqual(parseClassNames(join(plain, 'class-names.txt')), ['zero', 'one']);
});

test('the plateau schedule divides by 10 after `patience` epochs without a new best, at most maxDrops times', () => {
  const spec = parseSchedule('plateau:2:1');
  let s = initialScheduleState(0.01);
  const lrs = [0.5, 0.4, 0.45, 0.41, 0.42, 0.43, 0.44].map((error, i) => (s = afterEpoch(spec, s, i + 1, error)).lr);
  assert.deepEqual(
    lrs.map((lr) => +lr.toPrecision(6)),
    [0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001],
  );
});

test('the steps schedule divides at the given epochs; constant never does; bad forms are refused', () => {
  let s = initialScheduleState(1);
  const lrs = [1, 2, 3, 4].map((epoch) => (s = afterEpoch(parseSchedule('steps:2,3'), s, epoch, 0.5)).lr);
  assert.deepEqual(
    lrs.map((lr) => +lr.toPrecision(6)),
    [1, 0.1, 0.01, 0.01],
  );
  assert.equal(afterEpoch(parseSchedule('constant'), initialScheduleState(1), 1, 0.9).lr, 1);
  assert.throws(() => parseSchedule('cosine'), /unknown schedule 'cosine'/);
  assert.deepEqual(parseSchedule('steps:60%,80%', 5), { kind: 'steps', epochs: [3, 4] });
  assert.deepEqual(parseSchedule('steps:60%,80%', 12), { kind: 'steps', epochs: [7, 10] });
  assert.deepEqual(parseSchedule('steps:1%', 3), { kind: 'steps', epochs: [1] });
  assert.throws(() => parseSchedule('steps:60%'), /unknown schedule/); // a percentage needs the run's length
});

test('the linear schedule warms up, then falls to 0 at the last step; epoch ends do not change it', () => {
  const spec = parseSchedule('linear:0.5', 2),
    state = initialScheduleState(0.4);
  // 2 epochs of 4 steps: warm-up over 2 steps, then 6 steps down to 0
  const lrs = Array.from({ length: 8 }, (_, step) => learningRateAt(spec, state, 0.4, step, 4, 8));
  assert.deepEqual(
    lrs.map((lr) => +lr.toPrecision(6)),
    [0.2, 0.4, 0.4, 0.333333, 0.266667, 0.2, 0.133333, 0.0666667],
  );
  assert.deepEqual(afterEpoch(spec, { ...state, lr: 0.2 }, 1, 0.5).lr, 0.2);
  assert.deepEqual(parseSchedule('linear'), { kind: 'linear', warmup: 0 });
  assert.equal(learningRateAt(parseSchedule('steps:1'), { ...state, lr: 0.04 }, 0.4, 5, 4, 8), 0.04);
  assert.throws(() => parseSchedule('linear:2', 2), /the warm-up \(2 epochs\) must end before the run does/);
  assert.throws(() => parseSchedule('linear:x'), /unknown schedule/);
});

test('IDX files are read plain and gzipped; truncated and foreign files are refused with the reason', () => {
  const image = idx([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(parseIdx(image, 'a').dims, [2, 2, 3]);
  assert.deepEqual([...parseIdx(gzipSync(image), 'a.gz').data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.throws(
    () => parseIdx(image.subarray(0, 20), 'cut'),
    /^Error: cut: truncated: the header says 2×2×3 = 12 values, the file holds 4$/,
  );
  assert.throws(() => parseIdx(new TextEncoder().encode('%PDF-1.4 hello'), 'x.pdf'), /x.pdf: not an IDX file/);
  assert.throws(() => parseIdx(gzipSync(image).subarray(0, 20), 'bad.gz'), /bad.gz: corrupt gzip data/);
});

test('a dataset folder pairs images with labels and checks their counts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idx-'));
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([2], [3, 1])));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([1, 2, 2], [9, 9, 9, 9]));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([2], [0, 1]));
  assert.throws(() => loadDataset(dir, { classes: 4 }), /t10k-labels-idx1-ubyte: 2 labels for 1 images/);
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([1], [2]));
  const { train: t } = loadDataset(dir, { classes: 4 });
  assert.deepEqual([...t.labels], [3, 1]);
  assert.equal(t.classes, 4);
  assert.throws(() => loadDataset(join(dir, 'nope')), /does not exist/);
});

test('CIFAR-10 and CIFAR-100 binary batches are read; truncated ones are refused', () => {
  const record = (label: number[], fill: number) => Uint8Array.from([...label, ...new Array(3072).fill(fill)]);
  const ten = mkdtempSync(join(tmpdir(), 'cifar10-'));
  writeFileSync(join(ten, 'data_batch_1.bin'), Buffer.concat([record([7], 1), record([2], 2)]));
  writeFileSync(join(ten, 'test_batch.bin'), record([9], 3));
  const a = loadDataset(ten);
  assert.deepEqual([...a.train.labels], [7, 2]);
  assert.deepEqual(a.train.shape, [3, 32, 32]);
  assert.equal(a.train.pixels[3072], 2);
  const hundred = mkdtempSync(join(tmpdir(), 'cifar100-'));
  writeFileSync(join(hundred, 'train.bin'), record([3, 77], 5));
  writeFileSync(join(hundred, 'test.bin'), record([1, 12], 6).subarray(0, 3000));
  assert.throws(() => loadDataset(hundred), /test.bin: 3000 bytes is not a whole number of 3074-byte CIFAR records/);
  writeFileSync(join(hundred, 'test.bin'), record([1, 12], 6));
  assert.equal(loadDataset(hundred).train.labels[0], 77);
});

test('checkpoints round-trip and a truncated one is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
  const path = join(dir, 'c.safetensors');
  const spec: NetSpec = { inputs: { x: [3] }, layers: [{ name: 'fc', type: 'linear', outFeatures: 2 }] };
  const bias = { shape: [2], data: [0, 0] };
  writeCheckpoint(path, {
    spec,
    params: { 'fc.weight': { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, 'fc.bias': bias },
    velocities: { 'fc.weight': { shape: [2, 3], data: [0, 0, 0, 0, 0, 0.5] }, 'fc.bias': bias },
    state: { epoch: 3 },
  });
  const back = readCheckpoint(path);
  assert.deepEqual(back.spec, spec);
  assert.deepEqual(Array.from(back.params['fc.weight']!.data), [1, 2, 3, 4, 5, 6]);
  assert.equal(back.velocities!['fc.weight']!.data[5], 0.5);
  assert.equal(back.state.epoch, 3);
  const bytes = readFileSync(path);
  writeFileSync(path, bytes.subarray(0, bytes.length - 7));
  assert.throws(() => readCheckpoint(path), /c.safetensors: truncated: tensor '[a-z.]+' ends at byte \d+, data has \d+/);
});

function randomSet(count: number, seed: number): ImageSet {
  const rng = new Philox(seed);
  const labels = Uint8Array.from({ length: count }, () => rng.nextInt(4));
  // class-dependent blobs, so the labels are learnable
  const pixels = new Uint8Array(count * 64);
  labels.forEach((label, i) => {
    for (let k = 0; k < 64; k++) pixels[i * 64 + k] = ((k % 8) >> 1 === label ? 200 : 30) + rng.nextInt(40);
  });
  return { pixels, labels, shape: [1, 8, 8], classes: 4, source: 'random' };
}

/** The trainer's sources for a set, normalised as `options` records (mean 0.4, std 0.3). */
const batches = (set: ImageSet, augment = { pad: 0, flip: false }) => imageSetBatches(set, 0.4, 0.3, augment);

function options(outDir: string | undefined, extra: object = {}) {
  return {
    spec: tinySpec,
    backend: new ReferenceBackend(),
    train: batches(randomSet(48, 1), { pad: 1, flip: true }),
    validation: batches(randomSet(16, 2)),
    outDir,
    epochs: 3,
    batch: 8,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 0.0005,
    schedule: parseSchedule('plateau:1:2'),
    seed: 4,
    init: 'pytorch' as const,
    augment: { pad: 1, flip: true },
    mean: 0.4,
    std: 0.3,
    ...extra,
  };
}

test('a run stopped in the middle and resumed ends with the same weights, bit for bit', async () => {
  const straight = await train(options(mkdtempSync(join(tmpdir(), 'run-'))));
  const dir = mkdtempSync(join(tmpdir(), 'run-'));
  await train(options(dir, { stopAfterSteps: 9 })); // in the middle of the second epoch
  const resumed = await train(options(dir, { resume: true }));
  const a = await straight.net.readParams(),
    b = await resumed.net.readParams();
  for (const name of Object.keys(a)) assert.deepEqual(b[name], a[name], name);
  assert.deepEqual(
    resumed.metrics.map((m) => m.epoch),
    [2, 3],
  );
  assert.deepEqual(resumed.metrics.at(-1), {
    ...straight.metrics.at(-1),
    imagesPerSecond: resumed.metrics.at(-1)!.imagesPerSecond,
    wallSeconds: resumed.metrics.at(-1)!.wallSeconds,
  });
});

test("a run kept in memory (a page's) stops, resumes and ends as a run folder does, and its checkpoints are the folder's bytes", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-'));
  const straight = await train(options(dir));
  const store = new MemoryRun();
  await train({ ...options(undefined), store, stopAfterSteps: 9 });
  assert.equal(store.has('last'), true);
  const resumed = await train({ ...options(undefined), store, resume: true });
  const a = await straight.net.readParams(),
    b = await resumed.net.readParams();
  for (const name of Object.keys(a)) assert.deepEqual(b[name], a[name], name);
  assert.deepEqual(store.checkpoints.get('last'), new Uint8Array(readFileSync(join(dir, 'last.safetensors'))));
  assert.deepEqual(
    store.metrics.map((m) => m.epoch),
    [1, 2, 3],
  );
  await assert.rejects(train({ ...options(undefined), store: new MemoryRun('the page'), resume: true }), {
    message: "the page's last checkpoint does not exist: nothing to resume",
  });
});

test('training drives the loss of a small batch near zero', async () => {
  const { metrics } = await train(
    options(mkdtempSync(join(tmpdir(), 'fit-')), {
      train: batches(randomSet(8, 5)),
      validation: batches(randomSet(8, 5)),
      epochs: 60,
      augment: { pad: 0, flip: false },
      schedule: parseSchedule('constant'),
      spec: { ...tinySpec, layers: tinySpec.layers.filter((l) => l.type !== 'dropout') },
    }),
  );
  assert.ok(metrics.at(-1)!.loss < 0.05, `loss ${metrics.at(-1)!.loss}`);
  assert.equal(metrics.at(-1)!.valTop1Error, 0);
});

test('a NaN loss stops the run with one line naming its settings', async () => {
  await assert.rejects(
    train(options(mkdtempSync(join(tmpdir(), 'nan-')), { lr: 1e30 })),
    /^Error: the loss became (NaN|Infinity|[\d.e+]+, over [\d.e+]+) at epoch 1, step \d+ \(learning rate 1\.0e\+30, momentum 0\.9, weight decay 0\.0005, batch 8, init pytorch\): the run diverged; lower --lr or --momentum, or check the data\. The last good checkpoint is none \(it diverged in the first epoch\)$/,
  );
});

test('a diverging run stops and keeps its last good checkpoint; the bound is 100 × ln(classes) or the first loss', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diverge-'));
  await train(options(dir, { stopAfterSteps: 9 }));
  const good = readFileSync(join(dir, 'last.safetensors'));
  await assert.rejects(train(options(dir, { resume: true, lr: 1e6, overrides: ['lr'] })), (error: Error) =>
    /^the loss became .* at epoch 2, step \d+ \(learning rate 1\.0e\+6, .*\): the run diverged; .*The last good checkpoint is .*last\.safetensors$/.test(
      error.message,
    ),
  );
  assert.ok(readFileSync(join(dir, 'last.safetensors')).equals(good), 'the last good checkpoint is kept as it was');
  assert.equal(divergenceBound(10), 100 * Math.log(10));
  assert.equal(divergenceBound(2, 103), 10300, "a first loss above ln(classes) (another task's weights) sets the scale");
  assert.equal(divergenceBound(1000, NaN), 100 * Math.log(1000));
});

test('a row of scores with a NaN is a miss at every rank, not a hit', () => {
  assert.equal(classesAbove([0.1, NaN, 0.2], 0, 3, 2), 3);
  assert.equal(classesAbove([NaN, NaN, NaN], 0, 3, 0), 3);
  assert.equal(classesAbove([0.1, 0.5, 0.2], 0, 3, 1), 0);
});

test("evaluation with mirror images averages each image's softmax with its reflection's", async () => {
  const net = Net.build(tinySpec, { backend: new ReferenceBackend(), batch: 4, seed: 3 }),
    set = randomSet(10, 7),
    [mean, std] = [0.4, 0.3];
  const probabilities = async (pixels: Uint8Array) => {
    net.setInput(
      'data',
      Array.from(pixels, (v) => (v / 255 - mean) / std),
    );
    net.forward();
    const e = Array.from((await net.read('out')).slice(0, 4), (v) => Math.exp(v)),
      sum = e.reduce((a, b) => a + b); // the first image's row
    return e.map((v) => v / sum);
  };
  let top1 = 0,
    loss = 0;
  for (let i = 0; i < 10; i++) {
    const image = set.pixels.subarray(64 * i, 64 * (i + 1));
    const mirrored = image.map((_, k) => image[8 * Math.floor(k / 8) + 7 - (k % 8)]!);
    const batchOf = (img: Uint8Array) => Uint8Array.from({ length: 4 * 64 }, (_, k) => img[k % 64]!); // 4 copies: the net's batch
    const [p, q] = [await probabilities(batchOf(image)), await probabilities(batchOf(mirrored))];
    const average = p.map((v, c) => (v + q[c]!) / 2),
      label = set.labels[i]!;
    if (average.every((v) => v <= average[label]!)) top1++;
    loss -= Math.log(average[label]!);
  }
  const batches = imageSetBatches(set, mean, std, { pad: 0, flip: false });
  const result = await evaluate(net, batches, { mirror: true });
  assert.equal(result.top1, top1 / 10);
  assert.ok(Math.abs(result.loss - loss / 10) < 1e-5, `${result.loss} vs ${loss / 10}`);
  const plain = await evaluate(net, batches);
  assert.notEqual(plain.loss, result.loss);
  assert.deepEqual(result.singleView, plain, 'the same pass scores the images alone');
});

test('evaluation counts the confusion matrix and lists the misses, each image once, as the logits rank them', async () => {
  const net = Net.build(tinySpec, { backend: new ReferenceBackend(), batch: 4, seed: 5 });
  const set = randomSet(10, 9);
  const result = await evaluate(net, imageSetBatches(set, 0.4, 0.3, { pad: 0, flip: false }), { confusion: true });
  const expected = Array.from({ length: 4 }, () => new Array<number>(4).fill(0));
  const misses = [];
  for (let i = 0; i < 10; i++) {
    net.setInput(
      'data',
      Array.from({ length: 4 * 64 }, (_, k) => (set.pixels[64 * i + (k % 64)]! / 255 - 0.4) / 0.3),
    );
    net.forward();
    const row = Array.from((await net.read('out')).slice(0, 4));
    const predicted = row.indexOf(Math.max(...row)),
      label = set.labels[i]!;
    expected[label]![predicted]!++;
    if (predicted !== label) misses.push({ index: i, label, predicted });
  }
  assert.deepEqual(result.confusion, expected);
  assert.deepEqual(result.misses, misses);
  assert.equal(result.top1, (10 - misses.length) / 10);
});

test('a batch larger than the dataset is refused', async () => {
  await assert.rejects(
    train(options(mkdtempSync(join(tmpdir(), 'big-')), { batch: 100 })),
    /batch size 100 is larger than the training set \(48 images\)/,
  );
});

test("resume keeps the run's settings: a different one is refused unless overridden, and then recorded", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'settings-'));
  await train(options(dir, { stopAfterSteps: 3 }));
  await assert.rejects(
    train(options(dir, { resume: true, lr: 0.1 })),
    /--resume: lr 0.1 differs from the run's 0.05 \(in .*last.safetensors\); to change it from here on, add --override lr/,
  );
  await assert.rejects(
    train(options(dir, { resume: true, batch: 4 })),
    /--resume: batch 4 differs from the run's 8 .*; it cannot change: the run's position is counted in its batches/,
  );
  await assert.rejects(train(options(dir, { resume: true, batch: 4, overrides: ['batch'] })), /it cannot change/);
  await assert.rejects(train(options(dir, { resume: true, overrides: ['colour'] })), /--override: unknown setting 'colour'/);
  await assert.rejects(
    train(options(dir, { resume: true, spec: { ...tinySpec, layers: tinySpec.layers.filter((l) => l.type !== 'dropout') } })),
    /the model differs from the run's/,
  );
  await assert.rejects(
    train(options(dir, { resume: true, train: batches(randomSet(40, 1), { pad: 1, flip: true }) })),
    /training images 40 differs from the run's 48/,
  );
  const changes: unknown[] = [];
  await train(
    options(dir, { resume: true, lr: 0.1, overrides: ['lr'], onResume: (r: { changes: unknown[] }) => changes.push(...r.changes) }),
  );
  assert.deepEqual(changes, [{ epoch: 0, step: 3, setting: 'lr', from: 0.05, to: 0.1 }]);
  const state = readCheckpoint(join(dir, 'last.safetensors')).state as { options: { lr: number; changes: unknown[] } };
  assert.equal(state.options.lr, 0.1);
  assert.deepEqual(state.options.changes, changes);
});

test('a spec may name its loss layer anything; labels beyond the classes are named by record', async () => {
  const renamed = {
    ...tinySpec,
    layers: tinySpec.layers.map((l) => (l.type === 'softmax_cross_entropy' ? { ...l, name: 'objective' } : l)),
  };
  const { metrics } = await train(options(mkdtempSync(join(tmpdir(), 'named-')), { spec: renamed, epochs: 1 }));
  assert.ok(Number.isFinite(metrics[0]!.loss));
  const dir = mkdtempSync(join(tmpdir(), 'labels-'));
  const labels = Array.from({ length: 20 }, (_, i) => i % 10);
  labels[13] = 200;
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([20, 2, 2], new Array(80).fill(1)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([20], labels));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([1, 2, 2], [1, 1, 1, 1]));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([1], [0]));
  assert.throws(
    () => loadDataset(dir),
    /train-labels-idx1-ubyte: record 13 has label 200, but classes 10, 11, 12, … 199 \(190 classes\) have no images/,
  );
  assert.throws(
    () => loadDataset(dir, { classes: 10 }),
    /train-labels-idx1-ubyte: record 13 has label 200, beyond the 10 classes \(labels 0–9\)$/,
  );
  labels[13] = 3;
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([20], labels));
  assert.equal(loadDataset(dir).train.classes, 10);
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([20], new Array(20).fill(0)));
  assert.throws(() => loadDataset(dir), /train-labels-idx1-ubyte: its labels name 1 class; a classifier needs at least 2$/);
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([20], labels));
  rmSync(join(dir, 'train-images-idx3-ubyte'));
  assert.equal(loadSplit(dir, 'test', { classes: 10 }).labels.length, 1, 'the test split alone, without the training files');
});

test("a zoo model is sized for the data's classes; a spec file with other classes is refused before training", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'classes-'));
  const count = 6;
  for (const split of ['train', 't10k']) {
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([count, 28, 28], new Array(count * 784).fill(7)));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([count], [0, 1, 2, 0, 1, 2]));
  }
  const data = { data: dir, val: 0, seed: 0, cropPad: 0, flip: false, pca: 0 };
  const sized = await setUpRun({ ...data, model: 'alexnet-small-28' });
  assert.equal(specClasses(sized.spec), 3, 'the zoo net (10 classes) takes the data’s 3');
  const file = join(dir, 'ten-classes.json');
  writeFileSync(file, JSON.stringify(resolveModel('alexnet-small-28')));
  await assert.rejects(setUpRun({ ...data, model: file }), new RegExp(`^Error: ${file} scores 10 classes, .*holds 3$`));
  rmSync(dir, { recursive: true });
});
