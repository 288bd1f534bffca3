/**
 * Pictures of a run: the training curves (Vega-Lite, rendered to SVG by Vega, converted to PNG by
 * sharp) and the grid of the first convolution's filters, the paper's Figure 3.
 */
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/files.js';
import type { Net } from '../net/net.js';
import { readMetricsFile, RUN_FILES, type EpochMetrics } from '../train/run-folder.js';

/** Loss and error per epoch, side by side, as a PNG. */
export async function curvesPng(metrics: EpochMetrics[]): Promise<Buffer> {
  return sharp(Buffer.from(await curvesSvg(metrics)))
    .png()
    .toBuffer();
}

/** The same picture as SVG text (each point labelled with its epoch, value and series). */
export async function curvesSvg(metrics: EpochMetrics[]): Promise<string> {
  const rows = metrics.flatMap((m) => [
    { epoch: m.epoch, panel: 'loss', series: 'training loss', value: m.loss },
    { epoch: m.epoch, panel: 'loss', series: 'validation loss', value: m.valLoss },
    { epoch: m.epoch, panel: 'error', series: 'training error', value: m.trainError },
    { epoch: m.epoch, panel: 'error', series: 'validation top-1 error', value: m.valTop1Error },
    { epoch: m.epoch, panel: 'error', series: 'validation top-5 error', value: m.valTop5Error },
  ]);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: rows },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: ['loss', 'error'] } },
    spec: {
      width: 320,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: { background: 'white', legend: { labelLimit: 0 } },
  };
  // Loaded here, not with the module: Vega and Vega-Lite took 0.3 s of every CLI command's start.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** The filters of a [K, C, kh, kw] weight tensor as a grid of tiles, each scaled to its own range;
 * three input channels are shown as colour, one as grey. */
export async function filterGridPng(weight: ArrayLike<number>, shape: readonly number[], scale = 8): Promise<Buffer> {
  const [K, C, kh, kw] = shape as [number, number, number, number];
  const colour = C === 3;
  const columns = Math.ceil(Math.sqrt(K)),
    rows = Math.ceil(K / columns),
    gap = 1;
  const width = columns * (kw + gap) + gap,
    height = rows * (kh + gap) + gap;
  const pixels = new Uint8Array(width * height * 3).fill(255);
  for (let k = 0; k < K; k++) {
    const base = k * C * kh * kw;
    let lo = Infinity,
      hi = -Infinity;
    for (let i = 0; i < C * kh * kw; i++) {
      lo = Math.min(lo, weight[base + i]!);
      hi = Math.max(hi, weight[base + i]!);
    }
    const x0 = gap + (k % columns) * (kw + gap),
      y0 = gap + Math.floor(k / columns) * (kh + gap);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let c = 0; c < 3; c++) {
          const v = weight[base + (colour ? c : 0) * kh * kw + y * kw + x]!;
          pixels[((y0 + y) * width + x0 + x) * 3 + c] = Math.round((255 * (v - lo)) / (hi - lo || 1));
        }
      }
    }
  }
  return sharp(Buffer.from(pixels), { raw: { width, height, channels: 3 } })
    .resize(width * scale, height * scale, { kernel: 'nearest' })
    .png()
    .toBuffer();
}

/** A finished run's pictures in its folder: `curves.png` from its metrics, and the first
 * convolution's filters (`conv1-filters.png`) when the net has one. */
export async function writeRunPlots(dir: string, net: Net): Promise<void> {
  writeFileAtomic(join(dir, RUN_FILES.curves), await curvesPng(readMetricsFile(join(dir, RUN_FILES.metrics))));
  const conv1 = net.params.find((p) => p.shape.length === 4);
  if (conv1) writeFileAtomic(join(dir, RUN_FILES.filters), await filterGridPng(await conv1.value.read(), conv1.shape));
}
