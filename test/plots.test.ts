/** Run pictures: real PNGs of the expected sizes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { curvesPng, filterGridPng } from '../src/report/plots.js';

test('the training curves render to a PNG', async () => {
  const metrics = [1, 2, 3].map((epoch) => ({
    epoch,
    step: epoch * 10,
    loss: 1 / epoch,
    trainError: 0.3 / epoch,
    valTop1Error: 0.35 / epoch,
    valTop5Error: 0.05,
    valLoss: 1.1 / epoch,
    lr: 0.01,
    imagesPerSecond: 100,
    wallSeconds: epoch,
  }));
  const meta = await sharp(await curvesPng(metrics)).metadata();
  assert.equal(meta.format, 'png');
  assert.ok(meta.width! > 600 && meta.height! > 200, `${meta.width}×${meta.height}`);
});

test('the conv1 filter grid has one tile per filter, colour for three input channels', async () => {
  const weight = Float32Array.from({ length: 96 * 3 * 11 * 11 }, (_, i) => Math.sin(i));
  const png = await filterGridPng(weight, [96, 3, 11, 11], 2);
  const meta = await sharp(png).metadata();
  // 96 filters → 10 columns × 10 rows of 11-pixel tiles with 1-pixel gaps, scaled ×2
  assert.deepEqual([meta.width, meta.height, meta.channels], [2 * (10 * 12 + 1), 2 * (10 * 12 + 1), 3]);
});
