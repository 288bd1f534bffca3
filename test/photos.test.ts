/**
 * Photo datasets and `prepare`: a generated folder with JPEG, PNG, WebP, greyscale, CMYK, alpha,
 * EXIF-rotated, corrupt and truncated files and a stray text file, in each layout (class folders,
 * ILSVRC's validation layout, list files). Every image is stored as the paper rescales it (checked
 * against a hand-computed crop), every other file is listed with why; the mean image and the PCA
 * statistics equal a direct float64 computation over the stored pixels; an interrupted prepare
 * resumes to the same store, byte for byte.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { listPhotos } from '../src/data/photos.js';
import { openStore, prepareStore, StoreReader, symmetricEigen } from '../src/data/store.js';
import { ReferenceBackend } from '../src/backend/reference/backend.js';
import { storeBatches } from '../src/data/batches.js';
import { CAFFE } from '../src/data/preprocess.js';
import { readCheckpoint } from '../src/net/checkpoint.js';
import { Philox, streams } from '../src/random.js';
import { testCrops } from '../src/train/evaluate.js';
import { openModel } from '../src/models/open.js';
import { rgb32 } from './specs.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const SIZE = 32;

const flat = (width: number, height: number, colour: { r: number; g: number; b: number }) =>
  sharp({ create: { width, height, channels: 3, background: colour } });

/** Left half black, right half white: where the crop falls is visible. */
const halves = (width: number, height: number) => {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = width / 2; x < width; x++) pixels.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return sharp(pixels, { raw: { width, height, channels: 3 } });
};

/** Every kind of file a real folder holds, in class folders. */
async function photoFolder(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'photos-'));
  for (const split of ['train', 'val'])
    for (const [c, colour] of [
      ['n01', { r: 200, g: 60, b: 30 }],
      ['n02', { r: 20, g: 80, b: 200 }],
    ] as const) {
      const dir = join(root, split, c);
      mkdirSync(dir, { recursive: true });
      await flat(300, 200, colour).jpeg({ quality: 95 }).toFile(join(dir, 'a.jpg'));
      await flat(200, 260, colour).png().toFile(join(dir, 'b.png'));
      await flat(150, 100, colour).webp({ lossless: true }).toFile(join(dir, 'c.webp'));
    }
  const train = join(root, 'train');
  await flat(120, 80, { r: 90, g: 90, b: 90 })
    .grayscale()
    .jpeg()
    .toFile(join(train, 'n01', 'grey.jpg'));
  await flat(120, 80, { r: 200, g: 20, b: 20 })
    .toColourspace('cmyk')
    .jpeg({ quality: 100 })
    .toFile(join(train, 'n01', 'cmyk.jpg'));
  await sharp({ create: { width: 100, height: 80, channels: 4, background: { r: 10, g: 200, b: 20, alpha: 0.5 } } })
    .png()
    .toFile(join(train, 'n02', 'alpha.png'));
  // stored on its side: orientation 6 turns it 90° clockwise, the black half to the top
  await halves(128, 64)
    .png()
    .withMetadata({ orientation: 6 })
    .toFile(join(train, 'n02', 'exif.png'));
  await halves(128, 64)
    .png()
    .toFile(join(train, 'n02', 'halves.png'));
  writeFileSync(join(train, 'n02', 'corrupt.jpg'), 'not a jpeg at all');
  const whole = readFileSync(join(train, 'n01', 'a.jpg'));
  writeFileSync(join(train, 'n01', 'truncated.jpg'), whole.subarray(0, whole.length >> 1));
  writeFileSync(join(train, 'n01', 'notes.txt'), 'not an image');
  writeFileSync(join(root, 'synset_words.txt'), 'n01 goldfish, Carassius auratus\nn02 great white shark\n');
  return root;
}

const folder = photoFolder();

function records(dir: string, split: string) {
  const index = openStore(dir);
  const reader = new StoreReader(dir, index, split);
  const pixels = new Uint8Array(3 * index.size * index.size);
  const all = Array.from({ length: reader.count }, (_, i) => ({ label: reader.read(i, pixels), pixels: pixels.slice() }));
  reader.close();
  return all;
}

test('class folders: every image stored as the paper rescales it, every other file listed with why', async () => {
  const root = await folder;
  const dataset = listPhotos(root);
  assert.deepEqual(dataset.classNames, ['goldfish', 'great white shark'], 'named by synset_words.txt');
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  const index = await prepareStore(root, out, { size: SIZE });
  assert.equal(index.splits.train!.count, 6 + 5, 'the corrupt and the truncated file are not stored');
  assert.equal(index.splits.val!.count, 6);
  const skipped = readFileSync(join(out, 'skipped.txt'), 'utf8').trim().split('\n').sort();
  assert.deepEqual(
    skipped.map((l) => l.split('\t')[0]),
    ['train/n01/notes.txt', 'train/n01/truncated.jpg', 'train/n02/corrupt.jpg'],
  );
  assert.match(
    skipped.find((l) => l.includes('truncated'))!,
    /premature end|truncated/i,
  );
  const train = records(out, 'train');
  const files = dataset.splits.train!.files.filter((f) => !/corrupt|truncated/.test(f));
  const pixel = (name: string, x: number, y: number) => {
    const { pixels } = train[files.findIndex((f) => f.endsWith(name))]!;
    return [0, 1, 2].map((c) => pixels[c * SIZE * SIZE + y * SIZE + x]!);
  };
  const [r, g, b] = pixel('grey.jpg', 5, 5);
  assert.ok(r === g && g === b && Math.abs(r! - 90) <= 2, `grey becomes R = G = B ≈ 90: ${[r, g, b]}`);
  pixel('cmyk.jpg', 5, 5).forEach((v, c) => assert.ok(Math.abs(v - [200, 20, 20][c]!) <= 12, `CMYK → sRGB channel ${c}: ${v}`));
  pixel('alpha.png', 5, 5).forEach((v, c) => assert.ok(Math.abs(v - [10, 200, 20][c]!) <= 2, `alpha dropped (PIL's convert('RGB')): ${v}`));
  // 128×64 halves: the shorter side 64 → 32, the width 128 → 64, the centre 32 columns (16…47)
  // cropped: black for x < 16, white from 16 (the edge's blur aside)
  assert.deepEqual(pixel('halves.png', 4, 16), [0, 0, 0]);
  assert.deepEqual(pixel('halves.png', 28, 16), [255, 255, 255]);
  // turned by its EXIF orientation: black above, white below
  assert.deepEqual(pixel('exif.png', 16, 4), [0, 0, 0]);
  assert.deepEqual(pixel('exif.png', 16, 28), [255, 255, 255]);
  assert.equal(train.filter((r) => r.label === 1).length, 6);
});

test("the store's mean image and PCA statistics equal a direct float64 computation", async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  const index = await prepareStore(await folder, out, { size: SIZE });
  const train = records(out, 'train');
  const plane = SIZE * SIZE;
  const mean = new Float32Array(new Uint8Array(readFileSync(join(out, 'mean-image.f32'))).buffer);
  const expected = Array.from({ length: 3 * plane }, (_, i) => train.reduce((s, r) => s + r.pixels[i]!, 0) / train.length);
  expected.forEach((v, i) => assert.ok(Math.abs(mean[i]! - v) <= 1e-4 * v + 1e-5, `mean pixel ${i}`));
  const sums = [0, 0, 0],
    products = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (const { pixels } of train)
    for (let p = 0; p < plane; p++)
      for (let i = 0; i < 3; i++) {
        sums[i]! += pixels[i * plane + p]!;
        for (let j = 0; j < 3; j++) products[3 * i + j]! += pixels[i * plane + p]! * pixels[j * plane + p]!;
      }
  const n = train.length * plane;
  const m = sums.map((s) => s / n);
  const covariance = [0, 1, 2].map((i) => [0, 1, 2].map((j) => products[3 * i + j]! / n - m[i]! * m[j]!));
  covariance.forEach((row, i) =>
    row.forEach((v, j) => assert.ok(Math.abs(index.stats.covariance[i]![j]! - v) < 1e-6 * Math.abs(v) + 1e-9)),
  );
  const { eigenvalues: values, eigenvectors: vectors } = index.stats;
  assert.ok(values[0]! >= values[1]! && values[1]! >= values[2]!, 'descending');
  vectors.forEach((v, k) => {
    const av = [0, 1, 2].map((i) => covariance[i]!.reduce((s, c, j) => s + c * v[j]!, 0));
    av.forEach((x, i) => assert.ok(Math.abs(x - values[k]! * v[i]!) < 1e-6 * values[0]!, `A v = λ v for eigenvector ${k}`));
    vectors.forEach((w, l) => assert.ok(Math.abs(v.reduce((s, x, i) => s + x * w[i]!, 0) - (k === l ? 1 : 0)) < 1e-9, 'orthonormal'));
  });
  const diagonal = symmetricEigen([
    [3, 0, 0],
    [0, 5, 0],
    [0, 0, 1],
  ]);
  assert.deepEqual(diagonal.values, [5, 3, 1]);
});

test("ILSVRC's validation layout and list files read as datasets; no layout is named when none fits", async () => {
  const root = mkdtempSync(join(tmpdir(), 'ilsvrc-'));
  mkdirSync(join(root, 'val'));
  await flat(80, 60, { r: 1, g: 2, b: 3 })
    .jpeg()
    .toFile(join(root, 'val', 'ILSVRC2012_val_00000001.JPEG'));
  await flat(80, 60, { r: 1, g: 2, b: 3 })
    .jpeg()
    .toFile(join(root, 'val', 'ILSVRC2012_val_00000002.JPEG'));
  writeFileSync(join(root, 'LOC_synset_mapping.txt'), 'n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n');
  writeFileSync(
    join(root, 'LOC_val_solution.csv'),
    'ImageId,PredictionString\nILSVRC2012_val_00000002,n01440764 1 2 3 4\nILSVRC2012_val_00000001,n01443537 5 6 7 8 n01443537 1 1 2 2\n',
  );
  const ilsvrc = listPhotos(root);
  assert.equal(ilsvrc.layout, 'ILSVRC validation');
  assert.deepEqual(ilsvrc.splits.val!.labels, [1, 0]);
  assert.deepEqual(ilsvrc.classNames, ['tench', 'goldfish']);

  writeFileSync(join(root, 'train.txt'), 'val/ILSVRC2012_val_00000001.JPEG 3\nval/ILSVRC2012_val_00000002.JPEG 0\n');
  const list = listPhotos(join(root, 'train.txt'));
  assert.equal(list.layout, 'list files');
  assert.deepEqual(list.splits.train!.labels, [3, 0]);
  assert.equal(list.classIds.length, 4);
  writeFileSync(join(root, 'bad.txt'), 'just-a-path.jpg\n');
  assert.throws(() => listPhotos(join(root, 'bad.txt')), /bad\.txt: line 1 is not "path label": 'just-a-path\.jpg'$/);

  const empty = mkdtempSync(join(tmpdir(), 'empty-'));
  assert.throws(() => listPhotos(empty), /no dataset layout fits: expected class folders .*ILSVRC's validation layout .*list files/);
  rmSync(join(root, 'LOC_val_solution.csv'));
  rmSync(join(root, 'train.txt'));
  assert.throws(() => listPhotos(root), /needs LOC_val_solution\.csv or ILSVRC2012_validation_ground_truth\.txt beside it$/);
});

test('an interrupted prepare resumes to the same store, byte for byte', async () => {
  const root = await folder;
  const parent = mkdtempSync(join(tmpdir(), 'resume-'));
  const prepare = (out: string, env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [CLI, 'prepare', '--data', root, '--out', out, '--size', String(SIZE), '--shard', '3'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
  const whole = prepare(join(parent, 'whole'));
  assert.equal(whole.status, 0, whole.stderr);
  // killed half-way through its 4th atomic write: shard 2 (writes alternate shard, progress)
  const killed = prepare(join(parent, 'resumed'), { ALEXNET_FAULT_KILL_IN_WRITE: '5' });
  assert.equal(killed.signal, 'SIGKILL');
  assert.match(
    spawnSync(
      process.execPath,
      [CLI, 'eval', '--model', join(FIXTURES, 'pytorch-files', 'small_alexnet.pth'), '--data', join(parent, 'resumed')],
      { encoding: 'utf8' },
    ).stderr.trim(),
    /^alexnet: .*resumed is not a prepared store: its prepare was interrupted; run it again to finish$/,
  );
  const resumed = prepare(join(parent, 'resumed'));
  assert.equal(resumed.status, 0, resumed.stderr);
  const files = readdirSync(join(parent, 'whole')).sort();
  assert.deepEqual(readdirSync(join(parent, 'resumed')).sort(), files);
  for (const file of files) assert.ok(readFileSync(join(parent, 'whole', file)).equals(readFileSync(join(parent, 'resumed', file))), file);
  cpSync(join(parent, 'whole'), join(parent, 'again'), { recursive: true });
  assert.match(prepare(join(parent, 'again')).stderr, /already holds a prepared store/);
});

test("eval on a store: the paper's ten patches, cut and reflected by sharp independently, give the same scores", async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  const size = 236;
  await prepareStore(await folder, out, { size });
  const model = join(FIXTURES, 'pytorch-files', 'small_alexnet.pth');
  const run = spawnSync(
    process.execPath,
    [CLI, 'eval', '--model', model, '--data', out, '--crops', 'ten', '--batch', '4', '--json', '--threads', '1'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { top1: number; loss: number; count: number };
  const opened = openModel(model, { batch: 1, backend: new ReferenceBackend() });
  const mean = [0.485, 0.456, 0.406],
    std = [0.229, 0.224, 0.225];
  let loss = 0;
  const val = records(out, 'val');
  for (const { label, pixels } of val) {
    const interleaved = Buffer.alloc(pixels.length);
    for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) interleaved[3 * p + c] = pixels[c * size * size + p]!;
    const far = size - 224,
      centre = far / 2;
    const corners = [
      [centre, centre],
      [0, 0],
      [far, 0],
      [0, far],
      [far, far],
    ];
    const averaged = new Float64Array(10);
    for (const [left, top] of corners)
      for (const flip of [false, true]) {
        let patch = sharp(interleaved, { raw: { width: size, height: size, channels: 3 } }).extract({
          left: left!,
          top: top!,
          width: 224,
          height: 224,
        });
        if (flip) patch = patch.flop();
        const raw = await patch.raw().toBuffer();
        const x = new Float32Array(3 * 224 * 224);
        for (let p = 0; p < 224 * 224; p++) for (let c = 0; c < 3; c++) x[c * 224 * 224 + p] = (raw[3 * p + c]! / 255 - mean[c]!) / std[c]!;
        opened.net.setInput(opened.data, x);
        opened.net.forward();
        const z = await opened.net.read(opened.logits);
        const max = Math.max(...z);
        const sum = Array.from(z, (v) => Math.exp(v - max)).reduce((a, b) => a + b);
        z.forEach((v, c) => (averaged[c]! += Math.exp(v - max) / sum / 10));
      }
    loss -= Math.log(averaged[label]!);
  }
  assert.equal(result.count, val.length);
  assert.ok(Math.abs(result.loss - loss / val.length) < 1e-5 * Math.abs(result.loss), `loss ${result.loss} vs ${loss / val.length}`);
});

test("the ten test patches' corners, and PCA colour noise drawn from the seed along the store's eigenvectors", async () => {
  assert.deepEqual(
    testCrops(256, 224, 'ten').map(({ x, y, flip }) => `${x},${y}${flip ? 'f' : ''}`),
    ['16,16', '0,0', '32,0', '0,32', '32,32', '16,16f', '0,0f', '32,0f', '0,32f', '32,32f'],
  );
  assert.deepEqual(
    testCrops(256, 227, 'center'),
    [{ x: 14, y: 14, flip: false }],
    "Caffe's and torchvision's centre: 14 (half of 29, rounded to even)",
  );
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  const index = await prepareStore(await folder, out, { size: SIZE });
  const reader = new StoreReader(out, index, 'train');
  const preprocess = { channels: 'rgb' as const, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
  const source = storeBatches(reader, SIZE, preprocess, { crop: false, flip: false, pca: 0.1 });
  const x = new Float32Array(3 * SIZE * SIZE),
    y = new Float32Array(1);
  source.fill(Uint32Array.of(3), 0, 1, x, y, { seed: 42, epoch: 2, position: 7 });
  const pixels = new Uint8Array(3 * SIZE * SIZE);
  assert.equal(y[0], reader.read(3, pixels));
  const rng = Philox.fromState({ seed: 42, stream: streams.augmentation(2), drawn: 7 * 16 });
  const alphas = [0, 1, 2].map(() => rng.nextNormal() * 0.1);
  const shift = [0, 1, 2].map((c) =>
    alphas.reduce((s, a, i) => s + a * Math.sqrt(index.stats.eigenvalues[i]!) * index.stats.eigenvectors[i]![c]!, 0),
  );
  assert.ok(Math.abs(shift[0]!) + Math.abs(shift[1]!) + Math.abs(shift[2]!) > 0.5, 'a visible shift');
  for (const p of [0, 100, 3 * SIZE * SIZE - 1]) {
    const c = Math.floor(p / (SIZE * SIZE));
    const expected = ((pixels[p]! + shift[c]!) / 255 - preprocess.mean[c]!) / preprocess.std[c]!;
    assert.ok(Math.abs(x[p]! - expected) < 1e-5, `input ${p}: ${x[p]} vs ${expected}`);
  }
  reader.close();
});

test('a run on a store is the same for 0, 1 or 3 loader threads, and stopped and resumed, bit for bit', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  await prepareStore(await folder, out, { size: 40 });
  const parent = mkdtempSync(join(tmpdir(), 'store-run-'));
  writeFileSync(join(parent, 'rgb32.json'), JSON.stringify(rgb32(2)));
  const trainArgs = (dir: string, ...extra: string[]) => [
    CLI,
    'train',
    '--data',
    out,
    '--out',
    dir,
    '--model',
    join(parent, 'rgb32.json'),
    '--epochs',
    '3',
    '--batch',
    '2',
    '--val',
    '2',
    '--lr',
    '0.01',
    '--threads',
    '1',
    ...extra,
  ];
  const straight = spawnSync(process.execPath, trainArgs(join(parent, 'straight')), { encoding: 'utf8' });
  assert.equal(straight.status, 0, straight.stderr);
  assert.match(straight.stdout, /test accuracy .* on 6 images/, "tested on the store's val split");
  for (const loaders of ['0', '3']) {
    const other = spawnSync(process.execPath, trainArgs(join(parent, `loaders${loaders}`), '--loaders', loaders), { encoding: 'utf8' });
    assert.equal(other.status, 0, other.stderr);
    const same = readFileSync(join(parent, `loaders${loaders}`, 'last.safetensors')).equals(
      readFileSync(join(parent, 'straight', 'last.safetensors')),
    );
    assert.ok(same, `${loaders} loader threads: the same checkpoint as 1`);
  }
  const killed = spawnSync(process.execPath, trainArgs(join(parent, 'resumed')), {
    encoding: 'utf8',
    env: { ...process.env, ALEXNET_FAULT_KILL_IN_WRITE: '4' },
  });
  assert.equal(killed.signal, 'SIGKILL');
  const resumed = spawnSync(process.execPath, trainArgs(join(parent, 'resumed'), '--resume'), { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.ok(readFileSync(join(parent, 'straight', 'last.safetensors')).equals(readFileSync(join(parent, 'resumed', 'last.safetensors'))));
});

test('a small folder of photos trains and evaluates without a store, decoded in memory as prepare would store it', async () => {
  const root = await folder;
  const parent = mkdtempSync(join(tmpdir(), 'memory-'));
  writeFileSync(join(parent, 'rgb32.json'), JSON.stringify(rgb32(2)));
  const args = [
    'train',
    '--data',
    root,
    '--out',
    join(parent, 'run'),
    '--model',
    join(parent, 'rgb32.json'),
    '--epochs',
    '1',
    '--batch',
    '2',
  ];
  const r = spawnSync(process.execPath, [CLI, ...args, '--val', '2', '--lr', '0.01', '--threads', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /class folders, 2 classes, train 13 images, val 6 images: decoding in memory/);
  assert.match(
    r.stdout,
    /training rgb32 on 9 images \(validation: 2 training images held out\)/,
    'the corrupt and truncated files skipped',
  );
  const options = readCheckpoint(join(parent, 'run', 'last.safetensors')).state.options as { preprocess: { resize: number } };
  assert.equal(options.preprocess.resize, 37, "32 × 256/224: the paper's proportion");
  const e = spawnSync(process.execPath, [CLI, 'eval', '--model', join(parent, 'run'), '--data', root, '--json', '--threads', '1'], {
    encoding: 'utf8',
  });
  assert.equal(e.status, 0, e.stderr);
  assert.equal((JSON.parse(e.stdout) as { count: number }).count, 6);
});

test("fine-tuning a Caffe-layout model on a store feeds it Caffe's inputs (BGR, the mean pixel) and records them", async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  await prepareStore(await folder, out, { size: 232 });
  const model = join(FIXTURES, 'onnx-caffe', 'bvlc_alexnet_small_opset9.onnx');
  const run = join(mkdtempSync(join(tmpdir(), 'tune-')), 'run');
  const args = [
    'train',
    '--data',
    out,
    '--out',
    run,
    '--init-from',
    model,
    '--freeze',
    '--epochs',
    '1',
    '--batch',
    '2',
    '--val',
    '2',
    '--threads',
    '1',
  ];
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const options = readCheckpoint(join(run, 'last.safetensors')).state.options as { preprocess: { channels: string; resize: number } };
  assert.deepEqual(options.preprocess, { ...CAFFE, resize: 232 });
});

test("the store's mean image and PCA statistics equal numpy's (numpy.linalg.eigh) on committed PNGs", async () => {
  const expected = JSON.parse(readFileSync(join(FIXTURES, 'photo-stats', 'numpy-stats.json'), 'utf8')) as {
    meanImage: number[];
    rgbMean: number[];
    covariance: number[][];
    eigenvalues: number[];
    eigenvectors: number[][];
  };
  const out = join(mkdtempSync(join(tmpdir(), 'store-')), 'store');
  const { stats } = await prepareStore(join(FIXTURES, 'photo-stats'), out, { size: 16 });
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  const mean = new Float32Array(new Uint8Array(readFileSync(join(out, 'mean-image.f32'))).buffer);
  expected.meanImage.forEach((v, i) => assert.ok(Math.abs(mean[i]! - v) <= 1e-4, `mean image ${i}`));
  expected.rgbMean.forEach((v, c) => close(stats.rgbMean[c]!, v, `mean of channel ${c}`));
  expected.covariance.forEach((row, i) => row.forEach((v, j) => close(stats.covariance[i]![j]!, v, `covariance ${i},${j}`)));
  expected.eigenvalues.forEach((v, k) => close(stats.eigenvalues[k]!, v, `eigenvalue ${k}`));
  expected.eigenvectors.forEach((v, k) => {
    const sign = Math.sign(v.reduce((s, x, i) => s + x * stats.eigenvectors[k]![i]!, 0)); // eigenvectors up to sign
    v.forEach((x, i) => assert.ok(Math.abs(sign * stats.eigenvectors[k]![i]! - x) < 1e-7, `eigenvector ${k}[${i}]`));
  });
});
