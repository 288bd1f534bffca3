#!/usr/bin/env node
/**
 * The browser app against Node, same machine, same sitting: an epoch of the scaled AlexNet
 * (alexnet-small-28, the `scaled` recipe: batch 64) on the app's Fashion-MNIST sample, trained in
 * the page (headless Chromium, the wasm backend on `--threads` threads) and by `alexnet train` with
 * the same backend and threads; alternated `--rounds` times. Then the time from opening the page
 * to its first prediction with the bundled net (a 28×28 test image given as soon as the page is
 * ready). Run after `npm run build`:
 *   node bench/app.mjs [--threads 2] [--rounds 2]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { appFolder, serveApp } from '../dist/src/app/serve.js';
import { loadSplit } from '../dist/src/data/dataset.js';

const option = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const threads = option('threads', 2),
  rounds = option('rounds', 2);
const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');
const sample = join(appFolder(), 'sample');
const work = mkdtempSync(join(tmpdir(), 'bench-app-'));

function nodeEpoch(round) {
  const args = ['train', '--data', sample, '--model', 'alexnet-small-28', '--epochs', '1', '--backend', 'wasm'];
  const r = spawnSync(process.execPath, [cli, ...args, '--threads', String(threads), '--out', join(work, `run-${round}`)], {
    encoding: 'utf8',
  });
  const line = /epoch 1: .*?([\d,]+) images\/s/.exec(r.stdout);
  if (!line) throw new Error(`alexnet train printed no epoch: ${r.stderr || r.stdout}`);
  return Number(line[1].replace(/,/g, ''));
}

async function pageEpoch(browser, url) {
  const page = await browser.newPage();
  await page.goto(`${url}?backend=wasm&threads=${threads}`);
  await page.waitForSelector('body[data-ready]', { timeout: 120_000 });
  await page.selectOption('#zoo', 'alexnet-small-28');
  await page.waitForSelector('#model-status:text-matches("^alexnet-small-28 [(]")');
  await page.fill('#epochs', '1');
  await page.click('#train');
  await page.waitForSelector('body[data-run=training]');
  await page.waitForSelector('body[data-run=finished]', { timeout: 600_000 });
  const cells = await page.$$eval('#epochs-table tbody td', (tds) => tds.map((td) => td.textContent));
  await page.close();
  return Number(cells[5]);
}

async function firstPrediction(browser, url, image) {
  const page = await browser.newPage();
  const start = performance.now();
  await page.goto(`${url}?backend=wasm&threads=${threads}`);
  await page.waitForSelector('body[data-ready]', { timeout: 120_000 });
  const ready = performance.now() - start;
  await page.setInputFiles('#image-file', image);
  await page.waitForSelector('#top5[data-predictions="1"]', { state: 'attached' });
  const predicted = performance.now() - start;
  await page.close();
  return { ready, predicted };
}

const test = loadSplit('/usr/share/datasets/fashion-mnist', 'test');
const image = join(work, 'test-0.png');
await sharp(Buffer.from(test.pixels.subarray(0, 784)), { raw: { width: 28, height: 28, channels: 1 } })
  .png()
  .toFile(image);
const { server, url } = await serveApp({ port: 0, host: '127.0.0.1' });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const rows = [];
  for (let round = 1; round <= rounds; round++) {
    const page = await pageEpoch(browser, url);
    const node = nodeEpoch(round);
    rows.push({ round, page, node, ratio: page / node });
    console.log(`round ${round}: page ${page} images/s, node ${node} images/s, page/node ${(page / node).toFixed(3)}`);
  }
  const starts = [];
  for (let i = 0; i < rounds; i++) starts.push(await firstPrediction(browser, url, image));
  for (const s of starts) console.log(`page ready ${(s.ready / 1000).toFixed(2)} s, first prediction ${(s.predicted / 1000).toFixed(2)} s`);
  console.log(JSON.stringify({ threads, rows, starts, chromium: browser.version(), node: process.version }));
} finally {
  await browser.close();
  server.close();
}
