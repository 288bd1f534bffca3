/** The `alexnet` command: output for good input, one clear line and a non-zero exit for bad input. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

function alexnet(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

test('info --json describes the paper net', () => {
  const r = alexnet('info', '--model', 'alexnet', '--json');
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { params: number; macsPerExample: number };
  assert.equal(info.params, 60_965_224);
});

test('--version prints the package version', () => {
  const r = alexnet('--version');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout.trim(),
    (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version,
  );
});

test('info reads a JSON spec file and reports its errors by layer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  writeFileSync(
    join(dir, 'bad.json'),
    JSON.stringify({ inputs: { data: [96, 8, 8] }, layers: [{ name: 'conv2', type: 'conv2d', outChannels: 10, kernel: 3, groups: 5 }] }),
  );
  const r = alexnet('info', '--model', join(dir, 'bad.json'));
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'alexnet: conv2: 96 input channels are not divisible by groups=5');
  writeFileSync(join(dir, 'broken.json'), '{ "inputs": ');
  assert.match(alexnet('info', '--model', join(dir, 'broken.json')).stderr, /^alexnet: model spec .*broken.json is not valid JSON/);
});

const badInputs: [string, string[], RegExp][] = [
  ['an unknown model', ['info', '--model', 'lenet'], /^alexnet: unknown model 'lenet' \(known: alexnet, /],
  ['an unknown option', ['info', '--model', 'alexnet', '--colour'], /unknown option '--colour'/],
  [
    'a missing dataset folder',
    ['train', '--data', '/nonexistent/fmnist', '--out', join(tmpdir(), 'never')],
    /^alexnet: dataset folder \/nonexistent\/fmnist does not exist$/,
  ],
  [
    'a missing checkpoint',
    ['eval', '--model', '/nonexistent/run.safetensors', '--data', '/tmp'],
    /^alexnet: cannot read model \/nonexistent\/run.safetensors: no such file$/,
  ],
  [
    'a zero batch',
    ['bench', '--model', 'alexnet', '--batch', '0'],
    /option '--batch <n>' argument '0' is invalid. must be an integer from 1 to 65536/,
  ],
  ['an unknown schedule', ['train', '--data', '/tmp', '--out', '/tmp/x', '--schedule', 'cosine'], /^alexnet: unknown schedule 'cosine'/],
  [
    'a warm-up as long as the run',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--epochs', '2', '--schedule', 'linear:2'],
    /^alexnet: schedule 'linear:2': the warm-up \(2 epochs\) must end before the run does \(2 epochs\)$/,
  ],
  [
    'a momentum that diverges',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--momentum', '1.5'],
    /argument '1.5' is invalid. must be a number in \[0, 1\)/,
  ],
  [
    'an empty learning rate',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--lr='],
    /option '--lr <x>' argument '' is invalid. must be a number in \(0, 1000\]/,
  ],
  [
    'a fractional seed',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--seed', '2.5'],
    /argument '2.5' is invalid. must be an integer from 0 to 4294967295/,
  ],
  [
    'a fractional crop padding',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--crop-pad', '1.5'],
    /argument '1.5' is invalid. must be an integer from 0 to 1024/,
  ],
  [
    'empty class names',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--class-names='],
    /^alexnet: class names: the list '' must name at least 2 classes, none of them empty$/,
  ],
  [
    '--override without --resume',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--override', 'lr'],
    /^alexnet: --override only applies with --resume$/,
  ],
  [
    '--resume with --force',
    ['train', '--data', '/tmp', '--out', '/tmp/x', '--resume', '--force'],
    /^alexnet: --resume continues a run and --force starts it over: give one of them$/,
  ],
  [
    '--resume of nothing',
    ['train', '--data', '/tmp', '--out', '/nonexistent/run', '--resume'],
    /^alexnet: --resume: \/nonexistent\/run holds no last.safetensors to continue from$/,
  ],
  [
    'a run folder without checkpoints',
    ['eval', '--model', '/tmp', '--data', '/tmp'],
    /^alexnet: \/tmp holds no checkpoint \(best.safetensors or last.safetensors\)$/,
  ],
];

for (const [what, args, message] of badInputs) {
  test(`${what} gets one clear line and exit code 1`, () => {
    const r = alexnet(...args);
    assert.equal(r.code, 1);
    assert.match(r.stderr.split('\n')[0]!, message);
  });
}

import sharp from 'sharp';
import { readFileSync } from 'node:fs';
import { Net, ReferenceBackend } from '../src/index.js';
import { writeCheckpoint } from '../src/net/checkpoint.js';
import { parseNpy, serializeNpy } from '../src/io/npy.js';
import { assertClose } from './helpers.js';
import { tinyLinear as tiny } from './specs.js';

async function trainedRun(): Promise<{ dir: string; checkpoint: string; net: Net }> {
  const dir = mkdtempSync(join(tmpdir(), 'cli-run-'));
  const net = Net.build(tiny, { backend: new ReferenceBackend(), batch: 3, seed: 9 });
  const params = await net.readParams();
  const checkpoint = join(dir, 'best.safetensors');
  writeCheckpoint(checkpoint, {
    spec: tiny,
    params: Object.fromEntries(net.params.map((p) => [p.name, { shape: p.shape, data: params[p.name]! }])),
    state: { options: { mean: 0.5, std: 0.25, classNames: ['ant', 'bee', 'cat', 'dog', 'eel'] } },
  });
  return { dir, checkpoint, net };
}

test('run: logits for an .npy tensor equal the library forward pass', async () => {
  const { dir, net } = await trainedRun();
  const x = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i));
  writeFileSync(join(dir, 'x.npy'), serializeNpy([3, 1, 8, 8], x));
  const r = alexnet('run', '--model', dir, '--input', join(dir, 'x.npy'), '--output', join(dir, 'y.npy'), '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const y = parseNpy(readFileSync(join(dir, 'y.npy')), 'y.npy');
  assert.deepEqual(y.shape, [3, 5]);
  net.setInput('data', x);
  net.forward();
  assertClose(y.data, await net.read('fc'), 1e-6, 1e-5, 'run vs library');
  // Two at a time: a full batch, then a last one of one example (padded): the same logits.
  const pairs = alexnet('run', '--model', dir, '--input', join(dir, 'x.npy'), '--output', join(dir, 'y2.npy'), '--batch', '2');
  assert.equal(pairs.code, 0, pairs.stderr);
  const y2 = parseNpy(readFileSync(join(dir, 'y2.npy')), 'y2.npy');
  assert.deepEqual(y2.shape, [3, 5]);
  assertClose(y2.data, y.data, 1e-6, 1e-5, 'run in batches of 2 vs one batch');
  writeFileSync(join(dir, 'bad.npy'), serializeNpy([3, 8, 8], x));
  assert.match(
    alexnet('run', '--model', dir, '--input', join(dir, 'bad.npy'), '--output', join(dir, 'z.npy')).stderr,
    /bad.npy: shape \[3, 8, 8\] does not match the model's input \[N, 1, 8, 8\]/,
  );
});

test('predict: top-K classes with probabilities for image files; an unreadable image is named', async () => {
  const { dir } = await trainedRun();
  const png = join(dir, 'x.png');
  await sharp(Buffer.from(Array.from({ length: 16 * 16 * 3 }, (_, i) => (i * 7) % 256)), { raw: { width: 16, height: 16, channels: 3 } })
    .png()
    .toFile(png);
  const r = alexnet('predict', '--model', dir, png, '--top', '3', '--json', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const [result] = JSON.parse(r.stdout) as { image: string; top: { class: number; name: string; probability: number }[] }[];
  assert.equal(result!.top.length, 3);
  for (const t of result!.top) assert.equal(t.name, ['ant', 'bee', 'cat', 'dog', 'eel'][t.class]);
  const one = alexnet('predict', '--model', dir, png, '--top', '1', '--threads', '1');
  assert.equal(one.stdout.trim(), `${png}: ${result!.top[0]!.name} ${(100 * result!.top[0]!.probability).toFixed(1)}%`);
  assert.ok(result!.top[0]!.probability >= result!.top[1]!.probability && result!.top[1]!.probability >= result!.top[2]!.probability);
  // Five images two at a time (the last batch short) rank and score each as one batch of five does.
  const pngs = [png, ...[1, 2, 3, 4].map((k) => join(dir, `x${k}.png`))];
  for (const [k, file] of pngs.slice(1).entries())
    await sharp(Buffer.from(Array.from({ length: 16 * 16 * 3 }, (_, i) => (i * (k + 3)) % 256)), {
      raw: { width: 16, height: 16, channels: 3 },
    })
      .png()
      .toFile(file);
  const [all, pairs] = [
    ['--batch', '5'],
    ['--batch', '2'],
  ].map((batch) => {
    const out = alexnet('predict', '--model', dir, ...pngs, '--top', '5', '--json', ...batch);
    assert.equal(out.code, 0, out.stderr);
    return JSON.parse(out.stdout) as { image: string; top: { class: number; probability: number }[] }[];
  });
  assert.deepEqual(
    pairs!.map((r) => r.image),
    pngs,
  );
  pairs!.forEach((r, i) => {
    assert.deepEqual(
      r.top.map((t) => t.class),
      all![i]!.top.map((t) => t.class),
    );
    assertClose(
      r.top.map((t) => t.probability),
      all![i]!.top.map((t) => t.probability),
      1e-6,
      1e-5,
      `image ${i}`,
    );
  });
  assert.equal(pairs![0]!.top[0]!.class, result!.top[0]!.class);
  writeFileSync(join(dir, 'not.png'), 'hello');
  assert.match(alexnet('predict', '--model', dir, join(dir, 'not.png')).stderr, /^alexnet: cannot decode image .*not.png/);
  // A folder stands for the images under it, in name order; one that does not decode is reported, the others still scored.
  const folder = join(dir, 'photos');
  mkdirSync(join(folder, 'more'), { recursive: true });
  for (const [k, name] of ['b.png', 'a.png', 'more/c.png'].entries()) copyFileSync(pngs[k]!, join(folder, name));
  writeFileSync(join(folder, 'notes.txt'), 'not an image');
  const mixed = alexnet('predict', '--model', dir, folder, join(dir, 'not.png'), '--top', '5', '--json');
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /^alexnet: cannot decode image .*not.png/);
  const entries = JSON.parse(mixed.stdout) as { image: string; error?: string; top?: { class: number }[] }[];
  assert.deepEqual(
    entries.map((e) => e.image),
    ['a.png', 'b.png', 'more/c.png'].map((name) => join(folder, name)).concat(join(dir, 'not.png')),
  );
  assert.deepEqual(
    entries[0]!.top!.map((t) => t.class),
    all![1]!.top.map((t) => t.class),
  );
  assert.match(entries[3]!.error!, /^cannot decode image .*not.png/);
  const text = alexnet('predict', '--model', dir, join(dir, 'not.png'), png, '--top', '1');
  assert.equal(text.code, 1);
  assert.match(text.stdout, new RegExp(`^${png.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  assert.match(text.stderr, /^alexnet: cannot decode image .*not.png/);
  // A link in a folder that leads nowhere is one unreadable image, not the end of the command.
  const linked = join(dir, 'linked');
  mkdirSync(linked);
  copyFileSync(png, join(linked, 'a.png'));
  symlinkSync(join(dir, 'nowhere.png'), join(linked, 'gone.png'));
  const dangling = alexnet('predict', '--model', dir, linked, '--top', '1');
  assert.equal(dangling.code, 1);
  assert.match(dangling.stdout, /a\.png: /);
  assert.match(dangling.stderr, /^alexnet: cannot decode image .*gone\.png/);
});

test('a checkpoint that does not match its model is refused', async () => {
  const { dir } = await trainedRun();
  const other = join(dir, 'other.safetensors');
  writeCheckpoint(other, { spec: tiny, params: { 'conv1.weight': { shape: [4, 1, 3, 3], data: new Array(36).fill(0) } }, state: {} });
  writeFileSync(join(dir, 'x.npy'), serializeNpy([3, 1, 8, 8], new Float32Array(192)));
  assert.match(
    alexnet('run', '--model', other, '--input', join(dir, 'x.npy'), '--output', join(dir, 'y.npy')).stderr,
    /other.safetensors does not match its model: parameter 'conv1.bias' is missing/,
  );
});

test('export writes an ONNX model that onnxruntime-web runs to the same logits', async () => {
  const { dir, net } = await trainedRun();
  const r = alexnet('export', '--model', dir, '--out', join(dir, 'tiny.onnx'), '--batch', '3');
  assert.equal(r.code, 0, r.stderr);
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(readFileSync(join(dir, 'tiny.onnx')));
  const x = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.cos(i));
  const out = await session.run({ data: new ort.Tensor('float32', x, [3, 1, 8, 8]) });
  net.setInput('data', x);
  net.forward();
  assertClose(out.fc!.data as Float32Array, await net.read('fc'), 1e-5, 1e-4, 'exported model in onnxruntime-web');
});
