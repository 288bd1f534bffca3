/**
 * `alexnet reproduce` at a test's size: every arm trains, an interrupted reproduction resumes to the
 * same numbers as one never stopped, finished runs are skipped, and every claim lands in the report
 * and results.json. With `filters` and `neighbours` on a run it made, and the nearest-neighbour
 * search against a float64 brute force.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { createBackend } from '../src/backend/choose.js';
import { shiftImages } from '../src/data/augment.js';
import { colourComponents, imageSetBatches } from '../src/data/batches.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { paramShapes } from '../src/net/net.js';
import type { NetSpec } from '../src/net/spec.js';
import { Philox } from '../src/random.js';
import { sizeOf } from '../src/tensor.js';
import { reproduce, type ReproduceOptions } from '../src/reproduce/reproduction.js';
import { readResult, RESULT_FILE, type RunResult } from '../src/reproduce/reproduce.js';
import { nearestNeighbours, NearestNeighbours } from '../src/train/features.js';
import { bandDataset, cifarDataset, FASHION_MNIST as FASHION, photoFolder } from './helpers.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const data = bandDataset(700, 200);
const scale = {
  trainImages: 256,
  validationImages: 128,
  testImages: 128,
  epochs: 2,
  curveEpochs: 2,
  curveRates: [0.02, 0.05],
  biasEpochs: 1,
  seeds: 2,
  neighbourQueries: 40,
};

/** Every run's result.json under a reproduction folder, by its path below runs/. */
function results(out: string): Map<string, RunResult> {
  const found = new Map<string, RunResult>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      const result = readResult(path);
      if (result) found.set(path.slice(out.length), result);
      else walk(path);
    }
  };
  walk(join(out, 'runs'));
  return found;
}

test('reproduce: every arm trains and lands in the report; interrupted, it resumes to the same numbers; finished runs are skipped', async () => {
  const { backend } = await createBackend('auto', 2);
  try {
    const base: Omit<ReproduceOptions, 'out'> = { data, backend, scale, command: 'alexnet reproduce (test)' };
    const whole = mkdtempSync(join(tmpdir(), 'reproduce-whole-'));
    const finished = await reproduce({ ...base, out: whole });
    assert.equal(finished.interrupted, false);

    // the same reproduction stopped every 40 steps, and continued each time by the same call
    const stopped = mkdtempSync(join(tmpdir(), 'reproduce-stopped-'));
    let calls = 0;
    for (;;) {
      let steps = 0;
      const r = await reproduce({ ...base, out: stopped, interrupted: () => ++steps > 40 });
      calls++;
      if (!r.interrupted) break;
      assert.ok(calls < 100, 'the reproduction makes progress between interruptions');
    }
    assert.ok(calls > 5, `interrupted ${calls - 1} times`);
    const a = results(whole),
      b = results(stopped);
    assert.equal(a.size, 24, 'runs: 4 of the sweep, the chosen rates at the second seed, 7 arms × 2 seeds, 2 bias arms × 2 seeds');
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [run, x] of a) {
      const y = b.get(run)!;
      assert.deepEqual(
        y.metrics.map((m) => [m.loss, m.trainError, m.valLoss]),
        x.metrics.map((m) => [m.loss, m.trainError, m.valLoss]),
        `${run}: the same losses`,
      );
      assert.deepEqual([y.test, y.train, y.tenPatch, y.stepLosses], [x.test, x.train, x.tenPatch, x.stepLosses], `${run}: the same scores`);
    }

    // a finished reproduction trains nothing again
    const seen: boolean[] = [];
    const again = await reproduce({
      ...base,
      out: whole,
      onRun: (r) => seen.push(r.finished),
      onProgress: () => assert.fail('trained again'),
    });
    assert.equal(again.interrupted, false);
    assert.ok(seen.length === 26 && seen.every(Boolean), 'every run found finished (the chosen rates at seed 1 are sweep runs)');

    const report = readFileSync(join(whole, 'REPORT.md'), 'utf8');
    const rows = report.split('\n').filter((l) => /^\| [A-Z]/.test(l) && l.includes('**'));
    const claims = [
      'Figure 1',
      '(3.3)',
      '(3.4)',
      'overfits substantially',
      'iterations to converge',
      'crops and flips',
      'PCA',
      'ten-patch',
      '(3.2)',
      '(5)',
      'Figure 3',
      'Figure 4',
    ];
    assert.equal(rows.length, claims.length, rows.join('\n'));
    claims.forEach((claim, i) => assert.ok(rows[i]!.includes(claim), `row ${i}: ${claim}`));
    for (const row of rows) assert.match(row, /\*\*(agrees|disagrees|not testable here)\*\*: \S/);
    const json = JSON.parse(readFileSync(join(whole, 'results.json'), 'utf8')) as {
      findings: { arms: Record<string, unknown[]>; curves: { relu: unknown[]; tanh: unknown[] }; figures: Record<string, string> }[];
    };
    const [f] = json.findings;
    assert.deepEqual(Object.keys(f!.arms).sort(), [
      'no-augmentation',
      'no-dropout',
      'no-lrn',
      'one-column-full',
      'one-column-half',
      'pool-2x2',
      'reference',
    ]);
    for (const runs of Object.values(f!.arms)) assert.equal(runs.length, 2);
    assert.equal(f!.curves.relu.length, 2);
    for (const file of Object.values(f!.figures)) {
      const meta = await sharp(join(whole, file)).metadata();
      assert.equal(meta.format, 'png', file);
      assert.ok(report.includes(`](${file})`), `${file} is in the report`);
    }
    assert.deepEqual(Object.keys(f!.figures).sort(), ['arms', 'biases', 'dropout', 'filters', 'neighbours', 'relu']);

    // Figure 3 and Figure 4 from the command line, on the reference arm's run folder
    const run = join(whole, 'runs', 'fashion-mnist', 'reference', 'seed-1');
    assert.ok(existsSync(join(run, RESULT_FILE)));
    const png = join(whole, 'f.png');
    const filters = spawnSync(process.execPath, [CLI, 'filters', '--model', run, '--out', png, '--scale', '2'], { encoding: 'utf8' });
    assert.equal(filters.status, 0, filters.stderr);
    // 32 grey 5×5 kernels in 2 columns: blocks of 4 × 4 tiles, 25 × 25 pixels, 3 apart
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.width, meta.height], [2 * 25, 2 * (25 + 3 + 25)]);
    const neighbours = spawnSync(
      process.execPath,
      [CLI, 'neighbours', '--model', run, '--data', data, '--images', '0', '3', '--out', png, '--threads', '1'],
      { encoding: 'utf8' },
    );
    assert.equal(neighbours.status, 0, neighbours.stderr);
    assert.match(neighbours.stdout, /2 images and their 5 nearest training images in relu7/);
    const bad = spawnSync(process.execPath, [CLI, 'neighbours', '--model', run, '--data', data, '--images', '9999', '--out', png], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^alexnet: image 9999 is not in .* \(0 to 199\)\n$/);
  } finally {
    await backend.dispose();
  }
});

test('nearest neighbours: exact against a float64 brute force, ties to the lower index, whatever the blocks', () => {
  const rng = new Philox(4);
  const width = 7,
    rows = 300,
    k = 5;
  const set = Float32Array.from({ length: rows * width }, () => Math.round(rng.nextNormal() * 4) / 4);
  for (let r = 100; r < 130; r++) set.copyWithin(r * width, (r - 100) * width, (r - 99) * width); // duplicates: ties
  const queries = Float32Array.from({ length: 12 * width }, () => Math.round(rng.nextNormal() * 4) / 4);
  queries.set(set.subarray(5 * width, 6 * width), 0); // a query that is a row, with a duplicate at 105
  const brute = Array.from({ length: 12 }, (_, q) =>
    Array.from({ length: rows }, (_, r) => {
      let sum = 0;
      for (let i = 0; i < width; i++) sum += (queries[q * width + i]! - set[r * width + i]!) ** 2;
      return { index: r, distance: Math.sqrt(sum) };
    })
      .sort((a, b) => a.distance - b.distance || a.index - b.index)
      .slice(0, k),
  );
  assert.deepEqual(nearestNeighbours(queries, set, width, k), brute);
  assert.deepEqual(
    nearestNeighbours(queries, set, width, k)[0]!
      .slice(0, 2)
      .map((n) => n.index),
    [5, 105],
  );
  const blocks = new NearestNeighbours(queries, width, k);
  for (let from = 0; from < rows;) {
    const to = Math.min(rows, from + 1 + rng.nextInt(50));
    blocks.add(set.subarray(from * width, to * width), from);
    from = to;
  }
  assert.deepEqual(blocks.result(), brute);
});

test('test patches: a shifted view is the crop of the padded image, mirrored first when asked', () => {
  const shape: [number, number, number] = [1, 3, 4];
  const image = Float32Array.from({ length: 12 }, (_, i) => i + 1);
  const shifted = Float32Array.from(image);
  shiftImages(shifted, 1, shape, { dx: 1, dy: -1, mirror: false }, -9, new Float32Array(12));
  assert.deepEqual([...shifted], [-9, -9, -9, -9, 2, 3, 4, -9, 6, 7, 8, -9]);
  const mirrored = Float32Array.from(image);
  shiftImages(mirrored, 1, shape, { dx: 0, dy: 0, mirror: true }, -9, new Float32Array(12));
  assert.deepEqual([...mirrored], [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9]);
});

test('reproduce --cifar: colour noise is an arm of its own, and the columns are measured for colour', async () => {
  const { backend } = await createBackend('auto', 2);
  try {
    const out = mkdtempSync(join(tmpdir(), 'reproduce-cifar-'));
    const cifar = cifarDataset(300, 100);
    const r = await reproduce({ data, cifar, backend, scale, out, only: ['augmentation', 'filters'], command: 'alexnet reproduce (test)' });
    assert.equal(r.interrupted, false);
    const report = readFileSync(join(out, 'REPORT.md'), 'utf8');
    const [grey, colour] = report.split('## CIFAR-10 (32×32 colour)');
    assert.match(grey!, /PCA colour noise lowers the error \(4\.1\) .*\*\*not testable here\*\*: the images have one channel/);
    assert.match(colour!, /PCA colour noise lowers the error \(4\.1\) .*colour noise σ 0\.1 .* \| test error [\d.]+ % ± [\d.]+ with, /);
    assert.match(
      colour!,
      /Figure 3\) .* share of kernel energy in colour: column 1 [\d.]+ %, column 2 [\d.]+ % \| \*\*(agrees|disagrees)\*\*/,
    );
    const runs = results(out);
    assert.deepEqual(
      [...runs.keys()].filter((k) => k.includes('cifar-10')).sort(),
      ['no-augmentation', 'no-pca', 'reference'].flatMap((arm) => [1, 2].map((seed) => `/runs/cifar-10/${arm}/seed-${seed}`)),
    );
    assert.equal(runs.get('/runs/cifar-10/reference/seed-1')!.settings.pca, 0.1);
    assert.equal(runs.get('/runs/fashion-mnist/reference/seed-1')!.settings.pca, undefined);
  } finally {
    await backend.dispose();
  }
});

test("colour noise: the shifts' covariance is σ² times the RGB covariance, along its principal components", () => {
  const rng = new Philox(3);
  const count = 64;
  const set = {
    pixels: Uint8Array.from({ length: count * 3 * 4 }, (_, i) => {
      const image = Math.floor(i / 12),
        c = Math.floor(i / 4) % 3;
      return Math.min(255, 60 + (image % 7) * 20 * (c + 1) + (c === 2 ? rng.nextInt(40) : 0));
    }),
    labels: new Uint8Array(count),
    shape: [3, 2, 2] as [number, number, number],
    classes: 1,
    source: 'test',
  };
  const components = colourComponents(set);
  // the covariance from its definition, in float64
  const n = count * 4;
  const mean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = 0; i < count; i++) for (let k = 0; k < 4; k++) s += set.pixels[i * 12 + c * 4 + k]!;
    return s / n;
  });
  const covariance = [0, 1, 2].map((a) =>
    [0, 1, 2].map((b) => {
      let s = 0;
      for (let i = 0; i < count; i++)
        for (let k = 0; k < 4; k++) s += (set.pixels[i * 12 + a * 4 + k]! - mean[a]!) * (set.pixels[i * 12 + b * 4 + k]! - mean[b]!);
      return s / n;
    }),
  );
  const rebuilt = [0, 1, 2].map((a) =>
    [0, 1, 2].map((b) =>
      [0, 1, 2].reduce((s, i) => s + components.eigenvalues[i]! * components.eigenvectors[i]![a]! * components.eigenvectors[i]![b]!, 0),
    ),
  );
  rebuilt.flat().forEach((v, i) => assert.ok(Math.abs(v - covariance.flat()[i]!) < 1e-6 * (1 + Math.abs(v)), `covariance ${i}: ${v}`));
  // one image, 4,000 presentations: the shift of each channel, in 0–255 units
  const sigma = 0.5,
    std = 0.25;
  const source = imageSetBatches(set, 0, std, { pad: 0, flip: false, pca: { sigma, components } });
  const x = new Float32Array(12),
    y = new Float32Array(1);
  const shifts: number[][] = [];
  for (let batch = 0; batch < 4000; batch++) {
    source.fill(Uint32Array.of(5), 0, 1, x, y, { seed: 1, epoch: 0, position: batch });
    shifts.push([0, 1, 2].map((c) => (x[c * 4]! * std - set.pixels[5 * 12 + c * 4]! / 255) * 255));
  }
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < 3; b++) {
      const measured = shifts.reduce((s, v) => s + v[a]! * v[b]!, 0) / shifts.length;
      const expected = sigma * sigma * covariance[a]![b]!;
      assert.ok(
        Math.abs(measured - expected) < 0.1 * Math.sqrt(covariance[a]![a]! * covariance[b]![b]!) * sigma * sigma,
        `(${a}, ${b}): ${measured} against ${expected}`,
      );
    }
});

test('reproduce refuses a missing dataset and an unknown claim in one line', () => {
  const out = mkdtempSync(join(tmpdir(), 'reproduce-bad-'));
  const missing = spawnSync(process.execPath, [CLI, 'reproduce', '--out', out, '--data', join(out, 'nope')], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^alexnet: --data \S+nope: no such folder \(Debian's dataset-fashion-mnist installs it there\)\n$/);
  const unknown = spawnSync(process.execPath, [CLI, 'reproduce', '--out', out, '--data', data, '--only', 'relu,lrm'], { encoding: 'utf8' });
  assert.equal(unknown.status, 1);
  assert.match(
    unknown.stderr,
    /unknown claim lrm \(known: relu, lrn, pooling, dropout, augmentation, columns, biases, filters, neighbours\)/,
  );
  assert.ok(!existsSync(join(out, 'runs')), 'nothing trained');
});

test('neighbours on a folder of photos: image files as queries, the training photos searched as the model crops them', async () => {
  const photos = await photoFolder({ train: 3, val: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'neighbours-'));
  const png = join(dir, 'nn.png');
  // a small RGB net, its weights drawn here; its photos shorter side 36, centre 32
  const spec: NetSpec = {
    name: 'small-rgb',
    inputs: { data: [3, 32, 32], label: [] },
    layers: [
      { name: 'conv1', type: 'conv2d', outChannels: 8, kernel: 5, stride: 2 },
      { name: 'relu1', type: 'relu' },
      { name: 'fc1', type: 'linear', outFeatures: 16 },
      { name: 'relu_fc', type: 'relu' },
      { name: 'drop', type: 'dropout', p: 0.5 },
      { name: 'fc2', type: 'linear', outFeatures: 4 },
      { name: 'loss', type: 'softmax_cross_entropy', inputs: ['fc2', 'label'] },
    ],
  };
  const rng = new Philox(9);
  const tensors = Object.fromEntries(
    [...paramShapes(spec)].map(([param, shape]) => [
      param,
      { shape, data: Float32Array.from({ length: sizeOf(shape) }, () => rng.nextNormal() * 0.1) },
    ]),
  );
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
  writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(tensors));
  const preprocess = JSON.stringify({ channels: 'rgb', mean: [0.5], std: [0.25], resize: 36 });
  const queries = [join(photos, 'val', 'class0', 'p0.jpg'), join(photos, 'val', 'class3', 'p0.jpg')];
  const model = ['--model', join(dir, 'model.safetensors'), '--arch', join(dir, 'spec.json'), '--preprocess', preprocess];
  const args = ['neighbours', ...model, '--data', photos, '--out', png, '--count', '3', '--threads', '1'];
  const run = spawnSync(process.execPath, [CLI, ...args, '--images', ...queries], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /2 images and their 3 nearest training images in relu_fc\n$/);
  // a row per query: the image, its top classes, three neighbours (84-pixel thumbnails, 10 apart, 200 for the classes)
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [10 + 84 + 10 + 200 + 3 * 94, 28 + 2 * 110 + 10]);
  const indices = spawnSync(process.execPath, [CLI, ...args, '--images', '0'], { encoding: 'utf8' });
  assert.equal(indices.status, 1);
  assert.match(indices.stderr, /^alexnet: \S+ holds photos: give image files, not test-image indices \(0\)\n$/);
});

test('reproduce --photos: the paper net on photos, with and without colour noise and augmentation, scored on the ten patches', async () => {
  const { backend } = await createBackend('auto', 2);
  try {
    const out = mkdtempSync(join(tmpdir(), 'reproduce-photos-'));
    const photos = await photoFolder({ train: 5, val: 2 });
    const small = { ...scale, epochs: 1, seeds: 1 };
    const r = await reproduce({
      data,
      photos,
      backend,
      scale: small,
      out,
      only: ['augmentation', 'filters'],
      command: 'alexnet reproduce (test)',
    });
    assert.equal(r.interrupted, false);
    const runs = results(out);
    const reference = runs.get('/runs/photos/reference/seed-1')!;
    assert.deepEqual([...runs.keys()].filter((k) => k.includes('/photos/')).sort(), [
      '/runs/photos/no-augmentation/seed-1',
      '/runs/photos/no-pca/seed-1',
      '/runs/photos/reference/seed-1',
    ]);
    assert.equal(reference.net, 'alexnet-224');
    assert.ok(reference.tenPatch && reference.test.top1Error >= 0, 'scored with the centre crop and the ten patches');
    assert.deepEqual(
      [reference.settings.batch, reference.settings.pca, reference.settings.randomCrops],
      [4, 0.1, true],
      'a quarter of 20 photos',
    );
    const report = readFileSync(join(out, 'REPORT.md'), 'utf8');
    const section = report.slice(report.indexOf('## photos of '));
    assert.match(section, /PCA colour noise lowers the error \(4\.1\) .*\*\*(agrees|disagrees)\*\*/);
    assert.match(section, /ten-patch test beats the centre patch .*\*\*(agrees|disagrees)\*\*/);
    assert.match(section, /Figure 3\) .*2 columns \| share of kernel energy in colour: column 1 [\d.]+ %, column 2 [\d.]+ %/);
  } finally {
    await backend.dispose();
  }
});

test("a run's result.json that is not JSON is named, with what to do", async () => {
  const out = mkdtempSync(join(tmpdir(), 'reproduce-broken-'));
  const folder = join(out, 'runs', 'fashion-mnist', 'reference', 'seed-1');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, RESULT_FILE), '{"dataset": "fash');
  const { backend } = await createBackend('reference', 1);
  await assert.rejects(
    reproduce({ data, backend, scale, out, only: ['lrn'], command: 'alexnet reproduce (test)' }),
    (error: Error) =>
      error.message.startsWith(`${join(folder, RESULT_FILE)} is not valid JSON (`) &&
      error.message.endsWith('): delete it to train that run again'),
  );
});

test(
  'alexnet reproduce --quick on Fashion-MNIST: every claim in the report, within minutes',
  { skip: !existsSync(FASHION) && `no ${FASHION}` },
  () => {
    const out = join(mkdtempSync(join(tmpdir(), 'reproduce-quick-')), 'quick');
    const started = performance.now();
    const run = spawnSync(process.execPath, [CLI, 'reproduce', '--quick', '--out', out], { encoding: 'utf8' });
    const minutes = (performance.now() - started) / 60_000;
    assert.equal(run.status, 0, run.stderr);
    assert.ok(minutes < 15, `${minutes.toFixed(1)} minutes`);
    const report = readFileSync(join(out, 'REPORT.md'), 'utf8');
    assert.match(
      report,
      new RegExp(
        `^Generated by \`alexnet reproduce --quick --out ${out}\` on \\d{4}-\\d\\d-\\d\\d, on .* the \\w+ backend, ` +
          'in \\d+ min \\d+ s: 13 training runs, ',
        'm',
      ),
    );
    assert.equal(report.split('\n').filter((l) => /^\| [A-Z]/.test(l) && l.includes('**')).length, 12);
    for (const figure of ['relu', 'dropout', 'biases', 'filters', 'neighbours', 'arms'])
      assert.ok(existsSync(join(out, `${figure}-fashion-mnist.png`)), figure);
  },
);
