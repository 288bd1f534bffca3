#!/usr/bin/env node
/**
 * The README's pictures of the browser app (docs/app/*.png), taken in headless Chromium: the Model
 * view with the bundled net's layers, the Train view after two epochs of the scaled AlexNet on the
 * bundled sample, and the Use view classifying a Fashion-MNIST test image with the bundled net. Run
 * after `npm run build`:
 *   node tools/app-screenshots.mjs [--image N]   (N: the test image, default 0)
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { serveApp } from '../dist/src/app/serve.js';
import { loadSplit } from '../dist/src/data/dataset.js';

const root = join(import.meta.dirname, '..');
const out = join(root, 'docs', 'app');
const at = process.argv.indexOf('--image');
const index = at >= 0 ? Number(process.argv[at + 1]) : 0;
mkdirSync(out, { recursive: true });

const test = loadSplit('/usr/share/datasets/fashion-mnist', 'test');
const image = join(mkdtempSync(join(tmpdir(), 'shots-')), `fashion-mnist-test-${index}.png`);
await sharp(Buffer.from(test.pixels.subarray(784 * index, 784 * (index + 1))), { raw: { width: 28, height: 28, channels: 1 } })
  .png()
  .toFile(image);

const { server, url } = await serveApp({ port: 0, host: '127.0.0.1' });
const browser = await chromium.launch({
  executablePath: ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => p),
  args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(`${url}?backend=wasm`);
  await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
  await page.click('#layers-summary');
  await page
    .locator('section')
    .nth(0)
    .screenshot({ path: join(out, 'model.png') });
  await page.click('#layers-summary');
  await page.selectOption('#zoo', 'alexnet-small-28');
  await page.waitForSelector('#model-status:text-matches("^alexnet-small-28 [(]")');
  await page.fill('#epochs', '2');
  await page.click('#train');
  await page.waitForSelector('body[data-run=training]');
  await page.waitForSelector('body[data-run=finished]', { timeout: 600_000 });
  await page
    .locator('section')
    .nth(1)
    .screenshot({ path: join(out, 'train.png') });

  await page.selectOption('#zoo', 'fashion-mnist.safetensors');
  await page.waitForSelector('#model-status:text-matches("^fashion-mnist[.]safetensors [(]")');
  await page.setInputFiles('#image-file', image);
  await page.waitForSelector('#neighbours li:nth-child(5)', { timeout: 60_000 });
  await page
    .locator('section')
    .nth(2)
    .screenshot({ path: join(out, 'use.png') });
  console.log(`wrote ${['model', 'train', 'use'].map((v) => join(out, `${v}.png`)).join(', ')}`);
} finally {
  await browser.close();
  server.close();
}
