/**
 * Pictures of a run: the training curves (Vega-Lite, rendered to SVG by Vega, converted to PNG by
 * sharp) and the grid of the first convolution's filters, the paper's Figure 3.
 */
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/files.js';
import type { Net } from '../net/net.js';
import { firstConvolution } from '../net/roles.js';
import { filterGrid } from './filters.js';
import { readMetricsFile, RUN_FILES } from '../train/run-folder.js';
import type { EpochMetrics } from '../train/run-store.js';

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
  return svgOf(spec);
}

export interface LinePoint {
  x: number;
  y: number;
  /** The line's colour and legend entry. */
  series: string;
  /** Its dash and second legend (e.g. training against validation), when there is one. */
  style?: string;
}

/** Lines of a quantity against another as a PNG, axes titled, with a horizontal rule when asked
 * (a threshold). Series differ by colour, styles by dash: solid for the first style. */
export async function lineChartPng(o: {
  points: LinePoint[];
  x: string;
  y: string;
  title: string;
  percent?: boolean;
  rule?: { y: number; label: string };
}): Promise<Buffer> {
  const styled = o.points.some((p) => p.style !== undefined);
  // dashes in order of appearance, the first solid; on the series' own field when each series is a
  // style of its own, so the two legends are one
  const dashField = o.points.every((p) => p.style === p.series) ? 'series' : 'style';
  const line = {
    mark: { type: 'line' as const, strokeWidth: 2 },
    encoding: {
      x: { field: 'x', type: 'quantitative' as const, title: o.x, axis: { tickMinStep: 1 } },
      // errors from 0; a loss where it moves
      y: {
        field: 'y',
        type: 'quantitative' as const,
        title: o.y,
        scale: { zero: o.percent === true },
        ...(o.percent ? { axis: { format: '.0%' } } : {}),
      },
      color: { field: 'series', type: 'nominal' as const, title: null, sort: null },
      ...(styled
        ? {
            strokeDash: {
              field: dashField,
              type: 'nominal' as const,
              title: null,
              sort: null,
              scale: {
                range: [
                  [1, 0],
                  [6, 4],
                  [2, 2],
                ],
              },
            },
          }
        : {}),
    },
  };
  const rule = o.rule && {
    data: { values: [o.rule] },
    layer: [
      {
        mark: { type: 'rule' as const, color: 'grey', strokeDash: [2, 2] },
        encoding: { y: { field: 'y', type: 'quantitative' as const } },
      },
      {
        mark: { type: 'text' as const, align: 'left' as const, dx: 4, dy: -6, color: 'grey' },
        encoding: { y: { field: 'y', type: 'quantitative' as const }, x: { value: 0 }, text: { field: 'label' } },
      },
    ],
  };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: 420,
    height: 260,
    layer: [{ data: { values: o.points }, ...line }, ...(rule ? [rule] : [])],
    config: { background: 'white', legend: { labelLimit: 0 } },
  } as TopLevelSpec;
  return sharp(Buffer.from(await svgOf(spec)))
    .png()
    .toBuffer();
}

/** Bars of a mean per category with ± one standard deviation, one bar per series (e.g. training
 * and test error of each arm of an experiment), as a PNG. */
export async function barChartPng(o: {
  bars: { category: string; series: string; mean: number; sd: number }[];
  y: string;
  title: string;
  percent?: boolean;
}): Promise<Buffer> {
  const rows = o.bars.map((b) => ({ ...b, low: b.mean - b.sd, high: b.mean + b.sd }));
  const axis = o.percent ? { axis: { format: '.0%' } } : {};
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    data: { values: rows },
    width: { step: 22 },
    height: 260,
    encoding: {
      x: { field: 'category', type: 'nominal', title: null, sort: null, axis: { labelAngle: -30 } },
      xOffset: { field: 'series', sort: null },
      color: { field: 'series', type: 'nominal', title: null, sort: null },
    },
    layer: [
      { mark: 'bar', encoding: { y: { field: 'mean', type: 'quantitative', title: o.y, ...axis } } },
      {
        mark: { type: 'rule', color: 'black' },
        encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } },
      },
    ],
    config: { background: 'white', legend: { labelLimit: 0 } },
  } as TopLevelSpec;
  return sharp(Buffer.from(await svgOf(spec)))
    .png()
    .toBuffer();
}

async function svgOf(spec: TopLevelSpec): Promise<string> {
  // Loaded here, not with the module: Vega and Vega-Lite took 0.3 s of every CLI command's start.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** The filters of a [K, C, kh, kw] weight tensor as a PNG: `filterGrid`'s picture, each pixel
 * `scale` pixels square. */
export async function filterGridPng(
  weight: ArrayLike<number>,
  shape: readonly number[],
  { scale = 8, columns = 1 }: { scale?: number; columns?: number } = {},
): Promise<Buffer> {
  const { pixels, width, height } = filterGrid(weight, shape, columns);
  return sharp(Buffer.from(pixels), { raw: { width, height, channels: 3 } })
    .resize(width * scale, height * scale, { kernel: 'nearest' })
    .png()
    .toBuffer();
}

/**
 * How much of each filter's energy is colour, averaged over each column's block of filters: per
 * filter ‖w − ḡ‖² / ‖w‖², ḡ the filter's mean over its three channels at each pixel (0: the same
 * in every channel, colour-blind; 2/3 for one channel alone, up to 1 for opposite colours). The paper saw one column's
 * filters largely colour-agnostic and the other's colour-specific.
 */
export function colourShare(weight: ArrayLike<number>, shape: readonly number[], columns: number): number[] {
  const [K, C, kh, kw] = shape as [number, number, number, number];
  if (C !== 3) throw new Error(`filters of ${C} input channels have no colour`);
  const plane = kh * kw,
    perBlock = K / columns;
  const sums = new Array<number>(columns).fill(0);
  for (let k = 0; k < K; k++) {
    let colourEnergy = 0,
      energy = 0;
    for (let i = 0; i < plane; i++) {
      const [r, g, b] = [0, 1, 2].map((c) => weight[(k * 3 + c) * plane + i]!) as [number, number, number];
      const grey = (r + g + b) / 3;
      colourEnergy += (r - grey) ** 2 + (g - grey) ** 2 + (b - grey) ** 2;
      energy += r * r + g * g + b * b;
    }
    sums[Math.floor(k / perBlock)]! += energy > 0 ? colourEnergy / energy : 0;
  }
  return sums.map((sum) => sum / perBlock);
}

/** A finished run's pictures in its folder: `curves.png` from its metrics, and the first
 * convolution's filters (`conv1-filters.png`) when the net has one. */
export async function writeRunPlots(dir: string, net: Net): Promise<void> {
  writeFileAtomic(join(dir, RUN_FILES.curves), await curvesPng(readMetricsFile(join(dir, RUN_FILES.metrics))));
  const first = firstConvolution(net.spec);
  const conv1 = first && net.params.find((p) => p.name === `${first.name}.weight`);
  if (first && conv1)
    writeFileAtomic(join(dir, RUN_FILES.filters), await filterGridPng(await conv1.value.read(), conv1.shape, { columns: first.columns }));
}

/** An image of a figure: N × C × H × W bytes' image `index`, and what is written under it. */
export interface Thumbnail {
  pixels: Uint8Array;
  shape: readonly [number, number, number];
  index: number;
  caption: string;
}

export interface NeighbourRow {
  query: Thumbnail;
  /** The model's most probable classes for the query; `correct` marks the true one. */
  top: { label: string; probability: number; correct: boolean }[];
  neighbours: Thumbnail[];
}

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

async function thumbnailUri(t: Thumbnail, side: number): Promise<string> {
  const [C, H, W] = t.shape;
  const plane = H * W,
    base = t.index * C * plane;
  const interleaved = new Uint8Array(plane * C);
  for (let c = 0; c < C; c++) for (let i = 0; i < plane; i++) interleaved[i * C + c] = t.pixels[base + c * plane + i]!;
  const png = await sharp(Buffer.from(interleaved), { raw: { width: W, height: H, channels: C as 1 | 3 } })
    .resize(side, side, { kernel: 'nearest', fit: 'fill' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/**
 * The paper's Figure 4 as a PNG: one row per query image — the image with its true class, the
 * model's top classes with their probabilities (the true one marked ✓ and bold), then the images
 * nearest to it in a hidden layer, each with its class.
 */
export async function neighboursPng(rows: NeighbourRow[], title: string): Promise<Buffer> {
  const side = 84,
    pad = 10,
    text = 200,
    caption = 16,
    header = 28;
  const count = Math.max(1, ...rows.map((r) => r.neighbours.length));
  const width = pad + side + pad + text + count * (side + pad);
  const rowHeight = side + caption + pad;
  const height = header + rows.length * rowHeight + pad;
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${pad}" y="19" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  const label = (x: number, y: number, words: string, bold = false) =>
    `<text x="${x}" y="${y}" font-size="12"${bold ? ' font-weight="bold"' : ''}>${escapeXml(words)}</text>`;
  for (const [r, row] of rows.entries()) {
    const y = header + r * rowHeight;
    parts.push(`<image x="${pad}" y="${y}" width="${side}" height="${side}" href="${await thumbnailUri(row.query, side)}"/>`);
    parts.push(label(pad, y + side + 13, row.query.caption, true));
    for (const [i, t] of row.top.entries()) {
      const bar = Math.round(t.probability * (text - 20));
      const ty = y + i * 17;
      parts.push(
        `<rect x="${2 * pad + side}" y="${ty + 2}" width="${bar}" height="13" fill="${t.correct ? '#e45756' : '#4c78a8'}" opacity="0.35"/>`,
      );
      parts.push(label(2 * pad + side + 3, ty + 13, `${t.correct ? '✓ ' : ''}${t.label} ${(100 * t.probability).toFixed(1)} %`, t.correct));
    }
    for (const [n, t] of row.neighbours.entries()) {
      const x = 2 * pad + side + text + n * (side + pad);
      parts.push(`<image x="${x}" y="${y}" width="${side}" height="${side}" href="${await thumbnailUri(t, side)}"/>`);
      parts.push(label(x, y + side + 13, t.caption));
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
