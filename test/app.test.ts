/**
 * The browser app (dist/app, served by `alexnet serve`'s server) in headless Chromium: it loads
 * isolated and quiet, trains on its bundled sample, predicts as the CLI does from the checkpoint it
 * saves, continues that checkpoint's run, keeps its state through bad input, and passes axe's
 * accessibility rules.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { appFolder, serveApp } from '../src/app/serve.js';
import { loadSplit } from '../src/data/dataset.js';
import { FASHION_MNIST, photoFolder } from './helpers.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const chromiumPath = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => p && existsSync(p));
const skip = !chromiumPath
  ? 'no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)'
  : !existsSync(join(appFolder(), 'sample'))
    ? 'the app was built without its Fashion-MNIST sample (apt-get install dataset-fashion-mnist)'
    : false;

let browser: Browser;
let server: Server;
let url: string;
const dir = mkdtempSync(join(tmpdir(), 'app-'));

before(async () => {
  if (skip) return;
  ({ server, url } = await serveApp({ port: 0, host: '127.0.0.1' }));
  // a fake camera (a test pattern) for the webcam
  const camera = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
  // and WebGPU: Chromium's SwiftShader adapter where there is no GPU
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--enable-unsafe-webgpu', ...camera] });
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** A fresh page of the app, ready (engine started, the zoo's small net and the sample loaded); its console errors collected. */
async function openApp(address = url, backend = 'wasm'): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${address}?backend=${backend}`);
  await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
  return { page, errors };
}

/** Picks a zoo net (or the bundled one) and waits until the page shows it. */
async function selectModel(page: Page, name: string): Promise<void> {
  await page.selectOption('#zoo', name);
  await page.waitForFunction((n) => document.querySelector('#model-status')!.textContent!.startsWith(`${n} (`), name);
}

async function message(page: Page): Promise<string> {
  await page.waitForSelector('#message:not([hidden])', { timeout: 20_000 });
  return (await page.textContent('#message'))!;
}

async function trainEpochs(page: Page, epochs: number, state = 'finished'): Promise<void> {
  await page.fill('#epochs', String(epochs));
  await page.click('#train');
  await page.waitForSelector('body[data-run=training]');
  await page.waitForSelector(`body[data-run=${state}]`, { timeout: 240_000 });
}

/** The top-5 the page shows for an image file. */
async function pageTop5(page: Page, image: string): Promise<{ class: number; probability: number }[]> {
  const before = Number((await page.getAttribute('#top5', 'data-predictions')) ?? 0);
  await page.setInputFiles('#image-file', image);
  await page.waitForSelector(`#top5[data-predictions="${before + 1}"]`, { state: 'attached' });
  if (!(await page.isHidden('#message'))) throw new Error(`the page says: ${await page.textContent('#message')}`);
  return page.$$eval('#top5 li', (items) =>
    items.map((li) => ({ class: Number((li as HTMLElement).dataset.class), probability: Number((li as HTMLElement).dataset.probability) })),
  );
}

/** The page's top-5 for Fashion-MNIST's first test image with the bundled net are `alexnet predict`'s. */
async function assertPredictsAsCli(page: Page): Promise<void> {
  const image = await testImage();
  const shown = await pageTop5(page, image);
  const bundled = join(appFolder(), 'assets', 'fashion-mnist.safetensors');
  const cli = spawnSync(process.execPath, [CLI, 'predict', image, '--model', bundled, '--top', '5', '--json', '--backend', 'wasm'], {
    encoding: 'utf8',
  });
  assert.equal(cli.status, 0, cli.stderr);
  const [predicted] = JSON.parse(cli.stdout) as { top: { class: number; name: string; probability: number }[] }[];
  assert.equal(predicted!.top[0]!.name, 'Ankle boot', "Fashion-MNIST's first test image");
  for (const [i, s] of shown.entries()) {
    assert.equal(s.class, predicted!.top[i]!.class);
    assert.ok(Math.abs(s.probability - predicted!.top[i]!.probability) < 1e-4, `class ${s.class}`);
  }
}

/** Fashion-MNIST's first test image as a 28×28 grey PNG. */
async function testImage(): Promise<string> {
  const set = loadSplit(FASHION_MNIST, 'test');
  const path = join(dir, 'test-0.png');
  await sharp(Buffer.from(set.pixels.subarray(0, 784)), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(path);
  return path;
}

test('the app loads cross-origin isolated, without a console error, on wasm threads', { skip }, async () => {
  const { page, errors } = await openApp();
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  assert.match((await page.textContent('#backend'))!, /WebAssembly SIMD on \d+ threads?/);
  assert.equal(await page.isHidden('#isolation'), true);
  assert.match((await page.textContent('#model-status'))!, /^fashion-mnist\.safetensors \(pytorch\).*663,626 parameters; trained weights/);
  assert.match((await page.textContent('#data-status'))!, /5,400 training images, 600 held out for validation, 1,000 test images/);
  assert.deepEqual(errors, []);
  await page.close();
});

test(
  'training on the bundled sample lowers the loss; the saved checkpoint predicts in the CLI as in the page, and trains on',
  { skip },
  async () => {
    const { page, errors } = await openApp();
    await selectModel(page, 'alexnet-small-28');
    await trainEpochs(page, 1);
    const [first, last] = await Promise.all(['data-first-loss', 'data-last-loss'].map((a) => page.getAttribute('#loss-chart', a)));
    assert.ok(Number(last) < Number(first) / 2, `loss ${first} → ${last}`);
    const epoch = await page.$$eval('#epochs-table tbody tr td', (cells) => cells.map((c) => c.textContent!));
    assert.equal(epoch[0], '1');
    assert.ok(parseFloat(epoch[3]!) < 40, `validation top-1 error ${epoch[3]} after an epoch (chance: 90 %)`);
    const confusion = await page.$$eval('#confusion tbody td', (cells) => cells.map((c) => Number(c.textContent)));
    assert.equal(confusion.length, 100);
    assert.equal(
      confusion.reduce((a, b) => a + b, 0),
      600,
      'every validation image counted once',
    );
    const wrong = 600 - confusion.filter((_, i) => i % 11 === 0).reduce((a, b) => a + b, 0);
    assert.equal(Math.round((100 * wrong) / 600), Math.round(parseFloat(epoch[3]!)), 'the off-diagonal is the top-1 error');
    const misses = await page.$$eval('#misses li', (items) => items.map((li) => li.textContent));
    assert.equal(misses.length, Math.min(24, wrong));
    assert.match(misses[0]!, /^[\w/ -]+ → [\w/ -]+$/);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    const checkpoint = join(dir, download.suggestedFilename());
    await download.saveAs(checkpoint);
    const image = await testImage();
    const shown = await pageTop5(page, image);
    const cli = spawnSync(process.execPath, [CLI, 'predict', image, '--model', checkpoint, '--top', '5', '--json', '--backend', 'wasm'], {
      encoding: 'utf8',
    });
    assert.equal(cli.status, 0, cli.stderr);
    const [predicted] = JSON.parse(cli.stdout) as { top: { class: number; probability: number }[] }[];
    assert.deepEqual(
      shown.map((s) => s.class),
      predicted!.top.map((t) => t.class),
    );
    for (const [i, s] of shown.entries()) assert.ok(Math.abs(s.probability - predicted!.top[i]!.probability) < 1e-4, `class ${s.class}`);
    assert.deepEqual(await page.$$eval('.maps-row span', (rows) => rows.map((r) => r.textContent)), [
      'relu1: 16 of 32, 28×28',
      'relu2: 16 of 64, 14×14',
      'relu3: 16 of 64, 7×7',
      'relu4: 16 of 64, 7×7',
      'relu5: 16 of 64, 7×7',
    ]);
    await page.waitForSelector('#neighbours li:nth-child(5)', { timeout: 60_000 });
    assert.match((await page.textContent('#neighbours-status'))!, /^In relu7, nearest first:$/);
    const distances = await page.$$eval('#neighbours li', (items) =>
      items.map((li) => Number(/distance ([\d.]+)/.exec(li.textContent!)![1])),
    );
    assert.deepEqual(
      distances,
      [...distances].sort((a, b) => a - b),
    );

    // the downloaded run, opened again, continues where it stopped: its second epoch
    await page.setInputFiles('#model-file', checkpoint);
    await page.waitForFunction(() => document.querySelector('#model-status')!.textContent!.includes('a training run'));
    await trainEpochs(page, 1);
    assert.deepEqual(await page.$$eval('#epochs-table tbody tr td:first-child', (cells) => cells.map((c) => c.textContent)), ['2']);
    assert.deepEqual(errors, []);
    await page.close();
  },
);

test("the bundled net classifies as the CLI does with its file, and the webcam's frames are classified", { skip }, async () => {
  const { page, errors } = await openApp();
  await assertPredictsAsCli(page);
  await page.context().grantPermissions(['camera']);
  const before = Number(await page.getAttribute('#top5', 'data-predictions'));
  await page.click('#webcam');
  await page.waitForFunction((n) => Number(document.querySelector('#top5')!.getAttribute('data-predictions')) >= n + 2, before);
  assert.equal(await page.textContent('#webcam'), 'Stop the webcam');
  await page.click('#webcam');
  assert.equal(await page.isHidden('#webcam-video'), true);
  assert.deepEqual(errors, []);
  await page.close();
});

test('on WebGPU the bundled net predicts as the CLI does; a CPU adapter is passed over unless asked for', { skip }, async () => {
  const { page, errors } = await openApp(url, 'webgpu');
  assert.match((await page.textContent('#backend'))!, /^Backend: webgpu — WebGPU on \S/);
  await assertPredictsAsCli(page);
  assert.deepEqual(errors, []);
  await page.close();
  const auto = await openApp(url, 'auto');
  assert.match(
    (await auto.page.textContent('#backend'))!,
    /^Backend: (webgpu — WebGPU on |wasm — the WebGPU adapter \(.*\) runs on the CPU)/,
  );
  await auto.page.close();
});

test('pausing saves a run fine-tuning the bundled net between two steps, and resuming continues it', { skip }, async () => {
  const { page } = await openApp();
  await page.fill('#epochs', '2');
  await page.click('#train');
  await page.waitForFunction(() => Number(document.querySelector('#loss-chart')!.getAttribute('data-last-loss')) > 0);
  await page.click('#pause');
  await page.waitForSelector('body[data-run=paused]');
  assert.equal(await page.textContent('#train'), 'Resume');
  await page.click('#train');
  await page.waitForSelector('body[data-run=finished]', { timeout: 240_000 });
  assert.deepEqual(await page.$$eval('#epochs-table tbody tr td:first-child', (cells) => cells.map((c) => c.textContent)), ['1', '2']);
  await page.close();
});

test('bad input gets a message where the user looks, and the page keeps its state', { skip }, async () => {
  const { page } = await openApp();
  const status = await page.textContent('#model-status');
  const junk = join(dir, 'junk.onnx');
  writeFileSync(junk, 'not a model');
  await page.setInputFiles('#model-file', junk);
  assert.match(await message(page), /junk\.onnx: not a valid ONNX ModelProto/);
  assert.equal(await page.textContent('#model-status'), status);

  const notImage = join(dir, 'photo.jpg');
  writeFileSync(notImage, 'not an image');
  await page.setInputFiles('#image-file', notImage);
  assert.match(await message(page), /photo\.jpg is not an image this browser can decode/);

  await page.selectOption('#data-source', 'files');
  await page.setInputFiles('#data-files', join(FASHION_MNIST, 'train-images-idx3-ubyte.gz'));
  assert.match(await message(page), /train-labels-idx1-ubyte is missing/);
  assert.match((await page.textContent('#data-status'))!, /the bundled Fashion-MNIST sample: 5,400 training images/);

  const flat = mkdtempSync(join(tmpdir(), 'flat-'));
  writeFileSync(join(flat, 'one.jpg'), 'not even a photo');
  await page.selectOption('#data-source', 'folder');
  await page.setInputFiles('#data-folder', flat);
  assert.match(await message(page), /the folder holds no class folders of photos: expected class\/\*\.jpg/);
  assert.match((await page.textContent('#data-status'))!, /the bundled Fashion-MNIST sample: 5,400 training images/);

  await selectModel(page, 'alexnet-small-32');
  await page.click('#train');
  assert.match(await message(page), /the model takes \[3, 32, 32\] images and the data's are \[1, 28, 28\]/);
  assert.equal(await page.getAttribute('body', 'data-run'), 'idle');
  await page.close();
});

test("a folder of photos by class (train/ and val/) is decoded to the model's input and trains", { skip }, async () => {
  const photos = await photoFolder({ train: 12, val: 4 });
  writeFileSync(join(photos, 'train', 'notes.txt'), 'not a photo: skipped');
  const { page, errors } = await openApp();
  await selectModel(page, 'alexnet-small-32');
  await page.selectOption('#data-source', 'folder');
  await page.setInputFiles('#data-folder', photos);
  await page.waitForFunction(() => document.querySelector('#data-status')!.textContent!.startsWith('your photos'));
  assert.match(
    (await page.textContent('#data-status'))!,
    /decoded to 32×32\): 43 training images, 5 held out for validation, 16 test images of \[3, 32, 32\], 4 classes\.$/,
  );
  await trainEpochs(page, 2);
  const confusion = await page.$$eval('#confusion tbody td', (cells) => cells.map((c) => Number(c.textContent)));
  assert.equal(
    confusion.reduce((a, b) => a + b, 0),
    5,
  );
  assert.deepEqual(await page.$$eval('#confusion thead th', (cells) => cells.slice(1).map((c) => c.textContent)), [
    'class0',
    'class1',
    'class2',
    'class3',
  ]);
  assert.deepEqual(errors, []);
  await page.close();
});

test('served without COOP/COEP headers, the page says so and runs on one thread', { skip }, async () => {
  const plain = createServer((request, response) => {
    const file = join(appFolder(), request.url === '/' || request.url!.startsWith('/?') ? 'index.html' : request.url!);
    if (!existsSync(file)) return void response.writeHead(404).end();
    const types: Record<string, string> = {
      '.html': 'text/html',
      '.js': 'text/javascript',
      '.wasm': 'application/wasm',
      '.css': 'text/css',
    };
    response.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  try {
    const { page, errors } = await openApp(`http://127.0.0.1:${(plain.address() as AddressInfo).port}/`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.match((await page.textContent('#isolation'))!, /not cross-origin isolated/);
    assert.match((await page.textContent('#backend'))!, /on 1 thread: the page is not cross-origin isolated/);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    plain.close();
  }
});

test('axe finds no serious or critical accessibility violation', { skip }, async () => {
  const { page } = await openApp();
  await page.addScriptTag({ path: join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js') });
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } })
      .axe;
    return (await axe.run()).violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  });
  assert.deepEqual(
    violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'),
    [],
  );
  await page.close();
});

test('alexnet serve: the app with the isolation headers, files of its folder only; a port in use is one line', async () => {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (text: string) => resolve(text));
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    const address = /serving the app at (http:\/\/127\.0\.0\.1:(\d+)\/) \(Ctrl-C stops\)/.exec(line);
    assert.ok(address, line);
    const page = await fetch(address[1]!);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.match(await page.text(), /<title>AlexNet in TypeScript<\/title>/);
    assert.equal((await fetch(`${address[1]}wasm/kernels-simd.wasm`)).headers.get('content-type'), 'application/wasm');
    assert.equal((await fetch(`${address[1]}..%2F..%2Fpackage.json`)).status, 404);
    const busy = spawnSync(process.execPath, [CLI, 'serve', '--port', address[2]!], { encoding: 'utf8' });
    assert.equal(busy.status, 1);
    assert.equal(busy.stderr.trim(), `alexnet: port ${address[2]} on 127.0.0.1 is in use: give another with --port`);
  } finally {
    child.kill();
  }
});
