/** Run pictures: the curves show each epoch's losses and errors in two panels with their axes and
 * legend; the filter grid shows each filter scaled to its own range, in colour, gaps white. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { COLUMN_GAP } from '../src/report/filters.js';
import { colourShare, curvesPng, curvesSvg, filterGridPng } from '../src/report/plots.js';

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

test('the training curves: a loss panel and an error panel over the epochs, every value a labelled point, a legend of five series', async () => {
  const svg = await curvesSvg(metrics);
  const labels = new Set([...svg.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1]!));
  for (const title of ["Title text 'loss'", "Title text 'error'", "X-axis titled 'epoch' for a linear scale with values from 1.0 to 3.0"])
    assert.ok(labels.has(title), title);
  assert.ok(labels.has('Y-axis for a linear scale with values from 0.0 to 1.1'), 'the loss axis spans the losses');
  assert.ok(labels.has('Y-axis for a linear scale with values from 0.00 to 0.35'), 'the error axis spans the errors');
  const legend = 'training error, training loss, validation loss, validation top-1 error, validation top-5 error';
  assert.ok(labels.has(`Symbol legend for fill color and stroke color with 5 values: ${legend}`), 'the legend');
  const round = (x: number) => String(Number(x.toPrecision(12)));
  for (const m of metrics)
    for (const [series, value] of [
      ['training loss', m.loss],
      ['validation loss', m.valLoss],
      ['training error', m.trainError],
      ['validation top-1 error', m.valTop1Error],
      ['validation top-5 error', m.valTop5Error],
    ] as const)
      assert.ok(labels.has(`epoch: ${m.epoch}; value: ${round(value)}; series: ${series}`), `${series} at epoch ${m.epoch}`);
  const meta = await sharp(await curvesPng(metrics)).metadata();
  assert.equal(meta.format, 'png');
  assert.ok(meta.width! > 600 && meta.height! > 200, `${meta.width}×${meta.height}`);
});

test('the conv1 filter grid: one tile per filter, each scaled to its own range, colour for three input channels, gaps white', async () => {
  const shape = [96, 3, 11, 11] as const;
  const weight = Float32Array.from({ length: 96 * 3 * 11 * 11 }, (_, i) => Math.sin(i));
  const { data, info } = await sharp(await filterGridPng(weight, shape, { scale: 1 }))
    .raw()
    .toBuffer({ resolveWithObject: true });
  // 96 filters → 10 columns × 10 rows of 11-pixel tiles with 1-pixel gaps
  assert.deepEqual([info.width, info.height, info.channels], [10 * 12 + 1, 10 * 12 + 1, 3]);
  const pixel = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
  assert.deepEqual(pixel(0, 0), [255, 255, 255], 'a gap');
  for (const k of [0, 13, 95]) {
    const filter = weight.subarray(k * 363, (k + 1) * 363);
    const [lo, hi] = [Math.min(...filter), Math.max(...filter)];
    const [x0, y0] = [1 + (k % 10) * 12, 1 + Math.floor(k / 10) * 12];
    for (const [x, y] of [
      [0, 0],
      [5, 7],
      [10, 10],
    ] as const) {
      const expected = [0, 1, 2].map((c) => Math.round((255 * (filter[c * 121 + y * 11 + x]! - lo)) / (hi - lo)));
      assert.deepEqual(pixel(x0 + x, y0 + y), expected, `filter ${k} at (${x}, ${y})`);
    }
  }
});

test("the filter grid's columns: one block of kernels per column, stacked with a wider gap; grey for one channel", async () => {
  const shape = [8, 1, 3, 3] as const;
  const weight = Float32Array.from({ length: 8 * 9 }, (_, i) => Math.cos(i * 0.7));
  const { data, info } = await sharp(await filterGridPng(weight, shape, { columns: 2, scale: 1 }))
    .raw()
    .toBuffer({ resolveWithObject: true });
  // 4 kernels a column → 2 × 2 tiles of 3 pixels, 1 apart: blocks of 9 × 9, COLUMN_GAP rows between
  assert.deepEqual([info.width, info.height], [9, 9 + COLUMN_GAP + 9]);
  const pixel = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
  for (const k of [0, 3, 5, 7]) {
    const kernel = weight.subarray(k * 9, (k + 1) * 9);
    const [lo, hi] = [Math.min(...kernel), Math.max(...kernel)];
    const place = k % 4;
    const [x0, y0] = [1 + (place % 2) * 4, Math.floor(k / 4) * (9 + COLUMN_GAP) + 1 + Math.floor(place / 2) * 4];
    for (const [x, y] of [
      [0, 0],
      [2, 1],
    ] as const) {
      const v = Math.round((255 * (kernel[y * 3 + x]! - lo)) / (hi - lo));
      assert.deepEqual(pixel(x0 + x, y0 + y), [v, v, v], `kernel ${k} at (${x}, ${y})`);
    }
  }
  for (let y = 9; y < 9 + COLUMN_GAP; y++) assert.deepEqual(pixel(4, y), [255, 255, 255], 'the gap between the columns');
  await assert.rejects(filterGridPng(weight, shape, { columns: 3 }), /8 filters do not split into 3 columns/);
});

test('colour share: 0 for kernels equal in every channel, 2/3 for one channel alone, per column', () => {
  const grey = [1, -2, 3, 1, -2, 3, 1, -2, 3]; // 1 kernel of 3 channels, 1×3 pixels: the same in each
  const red = [1, 2, 3, 0, 0, 0, 0, 0, 0];
  const [a, b] = colourShare([...grey, ...red], [2, 3, 1, 3], 2);
  assert.ok(Math.abs(a!) < 1e-12 && Math.abs(b! - 2 / 3) < 1e-12, `${a}, ${b}`);
});
