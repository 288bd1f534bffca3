/**
 * Model files as users bring them (tools/make_interop_fixtures.py, Debian's PyTorch and ONNX): a
 * scaled-down torchvision AlexNet's state_dict as `.pth` (plain, half precision inside a training
 * checkpoint with DataParallel's prefixes, strided and storage-sharing tensors) and `.safetensors`;
 * a scaled-down bvlc_alexnet graph at opsets 3–12. Each opens to PyTorch's logits, and its
 * gradients; files that would run code, whole pickled modules, legacy and truncated files are
 * refused with one clear line. Exports read back (ours, and onnxruntime-web) to the same logits.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import * as ort from 'onnxruntime-web';
import { ReferenceBackend } from '../src/backend/reference/backend.js';
import { Net } from '../src/index.js';
import { parseNpy, serializeNpy } from '../src/io/npy.js';
import { readPth, unpickle } from '../src/io/pth.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { ZipArchive } from '../src/io/zip.js';
import { alexnetTorchvision } from '../src/models/alexnet.js';
import { IMAGENET_CLASSES } from '../src/models/imagenet-classes.js';
import { openModel, readModel, readModelBytes } from '../src/models/open.js';
import { paramShapes } from '../src/net/net.js';
import { loadOnnxFile } from '../src/onnx/import.js';
import { Philox } from '../src/random.js';
import { sizeOf } from '../src/tensor.js';
import { assertClose } from './helpers.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const FILES = join(FIXTURES, 'pytorch-files');
const CAFFE = join(FIXTURES, 'onnx-caffe');
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const npy = (path: string) => parseNpy(readFileSync(path), path);
const input = npy(join(FIXTURES, 'onnx-torch', 'input.npy'));
const logits = npy(join(FIXTURES, 'onnx-torch', 'logits_pool6.npy'));

async function run(path: string, x: Float32Array, batch: number) {
  const model = openModel(path, { batch, backend: new ReferenceBackend() });
  model.net.setInput(model.data, x);
  model.net.forward();
  return { model, out: await model.net.read(model.logits) };
}

for (const [file, expected] of [
  ['small_alexnet.pth', logits],
  ['small_alexnet.safetensors', logits],
  ['small_alexnet_strided.pth', logits],
  ['small_alexnet_half_checkpoint.pth', npy(join(FILES, 'logits_half.npy'))],
] as const) {
  test(`a PyTorch state_dict (${file}) opens as torchvision's AlexNet and runs to PyTorch's logits`, async () => {
    const { model, out } = await run(join(FILES, file), input.data, 2);
    assert.equal(model.kind, 'pytorch');
    assert.deepEqual(
      model.net.params.map((p) => p.name).slice(0, 3),
      ['features.0.weight', 'features.0.bias', 'features.3.weight'],
      "the file's own names",
    );
    assert.equal(model.preprocess?.channels, 'rgb', "torchvision's preprocessing");
    assertClose(out, expected.data, 1e-5, 1e-4, file);
  });
}

test("a file read from bytes (a page's file input) is the model read from its path, a re-zipped (deflated) .pth too", () => {
  const dir = mkdtempSync(join(tmpdir(), 'bytes-'));
  const pth = join(FILES, 'small_alexnet.pth');
  const deflated = new ZipArchive(readFileSync(pth), pth);
  const rezipped = zipSync(Object.fromEntries([...deflated.entries.keys()].map((name) => [name, deflated.read(name).slice()])), {
    level: 6,
  });
  assert.equal(new ZipArchive(rezipped, 'rezipped').entries.values().next().value!.method, 8, 'deflated entries');
  writeFileSync(join(dir, 'rezipped.pth'), rezipped);
  const sources = [
    pth,
    join(FILES, 'small_alexnet.safetensors'),
    join(CAFFE, 'bvlc_alexnet_small_opset12.onnx'),
    join(dir, 'rezipped.pth'),
  ];
  for (const path of sources) {
    const fromPath = readModel(path);
    const fromBytes = readModelBytes(path, new Uint8Array(readFileSync(path)));
    assert.equal(fromBytes.kind, fromPath.kind, path);
    assert.deepEqual(fromBytes.spec, fromPath.spec, path);
    assert.deepEqual(fromBytes.preprocess, fromPath.preprocess, path);
    for (const [name, t] of Object.entries(fromPath.params!))
      assert.deepEqual(Array.from(fromBytes.params![name]!.data), Array.from(t.data), name);
  }
  assert.throws(() => readModelBytes('notes.txt', new TextEncoder().encode('hello')), {
    message: /^notes\.txt: not a model file this reads/,
  });
});

test("one training step's gradients equal PyTorch's, parameter by parameter", async () => {
  const { tensors } = parseSafetensors(readFileSync(join(FILES, 'small_alexnet_grads.safetensors')), 'grads');
  const model = readModel(join(FILES, 'small_alexnet.pth'));
  const net = Net.build(model.spec, { backend: new ReferenceBackend(), batch: 2 });
  net.loadTensors(model.params!);
  net.setInput('data', input.data);
  net.setInput('label', tensors.labels!.data);
  net.forward({ training: false });
  net.backward();
  for (const p of net.params) assertClose(await p.grad.read(), tensors[`grad.${p.name}`]!.data, 1e-5, 1e-3, `gradient of ${p.name}`);
});

test('files that are not tensor state_dicts are refused with one line, and nothing runs', () => {
  const refused: [string, RegExp][] = [
    ['runs_a_command.pth', /runs_a_command\.pth: data\.pkl names posix\.system, which a tensor state_dict does not use; refused/],
    ['whole_module.pth', /whole_module\.pth: data\.pkl names __main__\.SmallAlexNet, .*save its model\.state_dict\(\) instead\)$/],
    ['legacy_format.pth', /legacy_format\.pth: PyTorch's legacy \(pre-1\.6, non-ZIP\) format is not read/],
    ['truncated.pth', /truncated\.pth: no ZIP directory at its end \(truncated, or not a ZIP archive\)$/],
  ];
  for (const [file, message] of refused) assert.throws(() => readModel(join(FILES, file)), message, file);
});

test('the unpickler knows only the opcodes and calls of a state_dict', () => {
  const fail = (what: string): never => {
    throw new Error(what);
  };
  const bytes = (...codes: (number | string)[]) =>
    Uint8Array.from(codes.flatMap((c) => (typeof c === 'string' ? [...Buffer.from(c)] : [c])));
  assert.deepEqual(unpickle(bytes(0x80, 2, 0x7d, 0x58, 1, 0, 0, 0, 'a', 0x4b, 7, 0x73, 0x2e), fail), new Map([['a', 7]]));
  assert.throws(
    () => unpickle(bytes(0x80, 2, 0x69, 'os\nsystem\n', 0x2e), fail),
    /opcode 0x69 at byte 2, which a tensor state_dict does not; refused$/,
  );
  assert.throws(
    () => unpickle(bytes(0x80, 2, 0x63, 'torch\nFloatStorage\n', 0x29, 0x52, 0x2e), fail),
    /calls torch\.FloatStorage at byte \d+: refused$/,
    'a storage type is named, never called',
  );
  assert.throws(() => unpickle(bytes(0x80, 2, 0x7d, 0x58, 9, 0, 0, 0, 'a'), fail), /ends in the middle of an opcode \(truncated\)$/);
  assert.throws(() => unpickle(bytes(0x80, 2, 0x68, 5, 0x2e), fail), /refers to memo 5, never stored/);
});

test('a tensor reaching past its storage is refused', () => {
  const zip = readFileSync(join(FILES, 'small_alexnet.pth'));
  const pickleAt = zip.indexOf('data.pkl') + 'data.pkl'.length;
  // the first tensor's shape (64, 3, 11, 11) → its first dimension made 65 in the pickle
  const damaged = Buffer.from(zip);
  const shapeAt = damaged.indexOf(Buffer.from([0x4b, 8, 0x4b, 3, 0x4b, 11, 0x4b, 11]), pickleAt);
  assert.ok(shapeAt > 0, 'the first shape in data.pkl');
  damaged[shapeAt + 1] = 9;
  const dir = mkdtempSync(join(tmpdir(), 'pth-'));
  writeFileSync(join(dir, 'bad.pth'), damaged);
  assert.throws(
    () => readPth(join(dir, 'bad.pth')),
    /bad\.pth: tensor 'features\.0\.weight' \[9, 3, 11, 11\] reaches value \d+ of a storage of 2904$/,
  );
});

test('names that fit no zoo architecture ask for --arch; --arch with a JSON spec loads them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arch-'));
  const spec = { ...alexnetTorchvision({ widths: [8, 16, 24, 16, 16, 32, 32], classes: 10 }) };
  spec.layers = spec.layers.map((l) => ({ ...l, name: l.name.replace('features.', 'body.') }));
  spec.layers = spec.layers.map((l) => (l.type === 'softmax_cross_entropy' ? { ...l, inputs: ['classifier.6', 'label'] } : l));
  const rng = new Philox(1);
  const tensors = Object.fromEntries(
    [...paramShapes(spec)].map(([name, shape]) => [
      name,
      { shape, data: Float32Array.from({ length: sizeOf(shape) }, () => rng.nextNormal()) },
    ]),
  );
  writeFileSync(join(dir, 'renamed.safetensors'), serializeSafetensors(tensors));
  writeFileSync(join(dir, 'renamed.json'), JSON.stringify(spec));
  assert.throws(
    () => readModel(join(dir, 'renamed.safetensors')),
    /renamed\.safetensors: its tensors \(body\.0\.weight \[8, 3, 11, 11\], .*\) match no zoo architecture's names and shapes: give --arch/,
  );
  const model = readModel(join(dir, 'renamed.safetensors'), { arch: join(dir, 'renamed.json') });
  assert.equal(model.kind, 'pytorch');
  assert.throws(
    () => readModel(join(dir, 'renamed.safetensors'), { arch: 'alexnet-torchvision' }),
    /is not a alexnet-torchvision: it has no 'features\.0\.weight'/,
  );
});

for (const file of readdirSync(CAFFE).filter((f) => f.endsWith('.onnx'))) {
  test(`Caffe's bvlc_alexnet layout (${file}): softmax and logits equal PyTorch's; Caffe's preprocessing`, async () => {
    const x = npy(join(CAFFE, 'input.npy'));
    const expected = npy(join(CAFFE, 'logits.npy')).data;
    const raw = loadOnnxFile(join(CAFFE, file));
    const net = Net.build(raw.spec, { backend: new ReferenceBackend(), batch: 1 });
    net.loadParams(raw.params);
    net.setInput('data_0', x.data);
    net.forward();
    const max = Math.max(...expected);
    const exp = Array.from(expected, (z) => Math.exp(z - max));
    const sum = exp.reduce((a, b) => a + b);
    assertClose(
      await net.read(raw.outputs[0]!),
      exp.map((e) => e / sum),
      1e-6,
      1e-4,
      `${file} softmax`,
    );
    const { model, out } = await run(join(CAFFE, file), x.data, 1);
    assert.equal(model.logits, 'fc8_1', 'the model scores the logits, the softmax dropped');
    assert.deepEqual(model.preprocess?.channels, 'bgr');
    assertClose(out, expected, 1e-4, 1e-4, `${file} logits`);
  });
}

const exec = promisify(execFile);
const alexnet = (...args: string[]) => exec(process.execPath, [CLI, ...args]);

test('export: safetensors with PyTorch names and ONNX read back, by us and onnxruntime, to the same logits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'export-'));
  const source = join(FILES, 'small_alexnet.pth');
  await alexnet('export', '--model', source, '--format', 'safetensors', '--out', join(dir, 'back.safetensors'));
  const exported = parseSafetensors(readFileSync(join(dir, 'back.safetensors')), 'back');
  const original = readPth(source);
  assert.deepEqual(Object.keys(exported.tensors).sort(), Object.keys(original).sort(), "PyTorch's state_dict names");
  for (const [name, t] of Object.entries(original)) assert.deepEqual(exported.tensors[name]!.data, t.data, name);
  assertClose((await run(join(dir, 'back.safetensors'), input.data, 2)).out, logits.data, 1e-5, 1e-4, 'safetensors round trip');

  await alexnet('export', '--model', source, '--batch', '2', '--out', join(dir, 'back.onnx'));
  const again = await run(join(dir, 'back.onnx'), input.data, 2);
  assertClose(again.out, logits.data, 1e-5, 1e-4, 'ONNX round trip');
  assert.deepEqual(again.model.preprocess, readModel(source).preprocess, 'the preprocessing travels in the metadata');
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(readFileSync(join(dir, 'back.onnx')));
  const result = await session.run({ data: new ort.Tensor('float32', input.data, [2, 3, 224, 224]) });
  assertClose(Object.values(result)[0]!.data as Float32Array, logits.data, 1e-5, 1e-4, 'onnxruntime-web');
});

test('predict: a 1000-class torchvision state_dict names ImageNet classes, its photo preprocessed as torchvision does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imagenet-'));
  const spec = alexnetTorchvision({ widths: [8, 16, 24, 16, 16, 32, 32], classes: 1000 });
  const rng = new Philox(3);
  const tensors = Object.fromEntries(
    [...paramShapes(spec)].map(([name, shape]) => [
      name,
      { shape, data: Float32Array.from({ length: sizeOf(shape) }, () => rng.nextNormal() * 0.3) },
    ]),
  );
  writeFileSync(join(dir, 'imagenet.safetensors'), serializeSafetensors(tensors));
  // a flat colour, lossless: rescaled and cropped, every input pixel is still (200, 120, 40)
  const photo = join(dir, 'photo.png');
  await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 200, g: 120, b: 40 } } })
    .png()
    .toFile(photo);
  const x = new Float32Array(3 * 224 * 224);
  [200, 120, 40].forEach((v, c) =>
    x.fill((v / 255 - [0.485, 0.456, 0.406][c]!) / [0.229, 0.224, 0.225][c]!, c * 224 * 224, (c + 1) * 224 * 224),
  );
  writeFileSync(join(dir, 'x.npy'), serializeNpy([1, 3, 224, 224], x));
  await alexnet('run', '--model', join(dir, 'imagenet.safetensors'), '--input', join(dir, 'x.npy'), '--output', join(dir, 'y.npy'));
  const z = npy(join(dir, 'y.npy')).data;
  const best = z.indexOf(Math.max(...z));
  const probability = 1 / Array.from(z, (v) => Math.exp(v - z[best]!)).reduce((a, b) => a + b);
  const { stdout } = await alexnet('predict', '--model', join(dir, 'imagenet.safetensors'), photo, '--json');
  const [{ top }] = JSON.parse(stdout) as { top: { class: number; name: string; probability: number }[] }[];
  assert.equal(top[0]!.class, best);
  assert.equal(top[0]!.name, IMAGENET_CLASSES[best]);
  assertClose([top[0]!.probability], [probability], 1e-6, 1e-4, 'top-1 probability');
  const { stdout: text } = await alexnet('predict', '--model', join(dir, 'imagenet.safetensors'), photo, '--top', '1');
  assert.equal(text.trim(), `${photo}: ${IMAGENET_CLASSES[best]} ${(100 * probability).toFixed(1)}%`);
});

test("the ONNX zoo's bvlc_alexnet layout (unread Dropout masks) opens in info, run, predict and eval", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zoo-'));
  const model = join(CAFFE, 'bvlc_alexnet_small_opset3.onnx');
  const info = JSON.parse((await alexnet('info', '--model', model, '--json')).stdout) as { layers: { type: string }[] };
  assert.equal(info.layers.filter((l) => l.type === 'dropout').length, 2);
  await alexnet('run', '--model', model, '--input', join(CAFFE, 'input.npy'), '--output', join(dir, 'y.npy'));
  assertClose(npy(join(dir, 'y.npy')).data, npy(join(CAFFE, 'logits.npy')).data, 1e-4, 1e-4, 'run');
  // a flat colour: every input value is the pixel less Caffe's mean pixel, in BGR
  const photo = join(dir, 'class0', 'photo.png');
  mkdirSync(join(dir, 'class0'));
  await sharp({ create: { width: 300, height: 260, channels: 3, background: { r: 200, g: 120, b: 40 } } })
    .png()
    .toFile(photo);
  const x = new Float32Array(3 * 227 * 227);
  [40 - 104, 120 - 117, 200 - 123].forEach((v, c) => x.fill(v, c * 227 * 227, (c + 1) * 227 * 227));
  writeFileSync(join(dir, 'x.npy'), serializeNpy([1, 3, 227, 227], x));
  await alexnet('run', '--model', model, '--input', join(dir, 'x.npy'), '--output', join(dir, 'z.npy'));
  const z = npy(join(dir, 'z.npy')).data;
  const best = z.indexOf(Math.max(...z));
  const [{ top }] = JSON.parse((await alexnet('predict', '--model', model, photo, '--json')).stdout) as { top: { class: number }[] }[];
  assert.equal(top[0]!.class, best);
  const scored = JSON.parse((await alexnet('eval', '--model', model, '--data', dir, '--json')).stdout) as { count: number; loss: number };
  assert.equal(scored.count, 1);
  const logSum = Math.log(Array.from(z, (v) => Math.exp(v - z[best]!)).reduce((a, b) => a + b)) + z[best]!;
  assertClose([scored.loss], [logSum - z[0]!], 1e-5, 1e-4, "eval's loss: class 0's cross-entropy");
});
