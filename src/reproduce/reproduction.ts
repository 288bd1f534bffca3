/**
 * A whole reproduction: the datasets loaded once, every run (resumed or skipped as its folder says),
 * the figures, `results.json` and `REPORT.md`. An interrupted reproduction writes nothing but its
 * runs' checkpoints; the same command continues it.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { firstImages, imageCount, subset } from '../data/dataset.js';
import { writeFileAtomic } from '../io/files.js';
import { readCheckpoint, RUN_CHECKPOINTS } from '../net/checkpoint.js';
import { Net } from '../net/net.js';
import { firstConvolution } from '../net/roles.js';
import { datasetImages, drawNeighbours, labelAgreement, searchNeighbours, searchPixels } from '../report/neighbours.js';
import { barChartPng, colourShare, filterGridPng, lineChartPng, type LinePoint } from '../report/plots.js';
import { type Arm, curveArms, FULL, photoArms, QUICK, type Scale } from './arms.js';
import { openPhotos, type PhotoSet, runPhotoArm } from './photos.js';
import { type DatasetFindings, mean, reportMarkdown, sd } from './report.js';
import {
  chosenRate,
  type Claim,
  CLAIMS,
  type Planned,
  plannedAblations,
  plannedSweep,
  type Prepared,
  prepareDataset,
  readJson,
  readResult,
  type RunContext,
  runArm,
  runFolder,
  type RunResult,
} from './reproduce.js';

export interface ReproduceOptions {
  out: string;
  /** Fashion-MNIST's folder (IDX files). */
  data: string;
  /** CIFAR-10's binary folder, when given: every experiment also on it. */
  cifar?: string;
  /** A photo store or folder with train and val splits: the claims about crops, flips, colour
   * noise, the ten patches and the columns' colours, on the paper's net. */
  photos?: string;
  quick?: boolean;
  only?: Claim[];
  seeds?: number;
  backend: Backend;
  /** Overrides of the full or quick scale (tests run smaller still). */
  scale?: Partial<Scale>;
  /** As the report's header prints it. */
  command: string;
  interrupted?: () => boolean;
  /** Told as each run starts (or is found finished). */
  onRun?: (r: { dataset: string; arm: string; seed: number; index: number; total: number; finished: boolean }) => void;
  onProgress?: RunContext['onProgress'];
}

export interface Reproduction {
  /** Stopped by `interrupted`: the runs so far are kept, and the same command continues. */
  interrupted: boolean;
  report?: string;
  runs: number;
}

/** Figure 1's threshold per dataset, and why. */
const THRESHOLDS: Record<string, { threshold: number; why: string }> = {
  'cifar-10': { threshold: 0.25, why: "25 % is the paper's own threshold on CIFAR-10." },
  'fashion-mnist': {
    threshold: 0.1,
    why:
      "The paper's 25 % is no test on Fashion-MNIST: both nets pass it within their first epoch. 10 % is the level " +
      'both reach within the run but only once they have learnt features beyond the first epoch.',
  },
};

/** The dataset's name for people, with its images' size and colour: "Fashion-MNIST (28×28 grey)";
 * a folder of other images of the same format is named by the folder. */
function titleOf(d: Prepared): string {
  const [channels, height, width] = d.shape;
  const cifar = d.name === 'cifar-10';
  const folder = basename(resolve(d.dir));
  const known = cifar ? 'CIFAR-10' : 'Fashion-MNIST';
  const name = folder.toLowerCase().includes(cifar ? 'cifar' : 'fashion') ? known : `${folder}, in ${known}'s format`;
  return `${name} (${height}×${width} ${channels === 3 ? 'colour' : 'grey'})`;
}

export async function reproduce(o: ReproduceOptions): Promise<Reproduction> {
  const started = performance.now();
  const scale: Scale = { ...(o.quick ? QUICK : FULL), ...o.scale, ...(o.seeds ? { seeds: o.seeds } : {}) };
  const claims = o.only ?? [...CLAIMS];
  const ctx: RunContext = {
    backend: o.backend,
    out: o.out,
    ...(o.interrupted ? { interrupted: o.interrupted } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  };
  const findings: DatasetFindings[] = [];
  const datasets = [prepareDataset('fashion-mnist', o.data, scale), ...(o.cifar ? [prepareDataset('cifar-10', o.cifar, scale)] : [])];
  const perDataset =
    (claims.includes('relu') ? scale.curveRates.length * 2 + scale.seeds * 2 : 0) + plannedAblations(datasets[0]!, scale, claims).length;
  const photos = o.photos ? await openPhotos(o.photos) : undefined;
  try {
    const arms = photos ? photoRuns(photos, scale, claims) : [];
    const total = perDataset * datasets.length + arms.length;
    let index = 0;
    const announce = (dataset: string, arm: string, seed: number) =>
      o.onRun?.({ dataset, arm, seed, index: ++index, total, finished: readResult(runFolder(o.out, dataset, arm, seed)) !== undefined });
    const run = async (p: Planned): Promise<RunResult | undefined> => {
      announce(p.dataset.name, p.arm.name, p.seed);
      return runArm(ctx, p.dataset, p.arm, p.seed);
    };
    for (const d of datasets) {
      const found = await reproduceOn(d, scale, claims, run);
      if (!found) return stopped(o.out, started, index);
      findings.push(found);
    }
    if (photos) {
      const f = emptyFindings(photos.name, photos.title, true, photos.classes, photos.train.count, photos.test.count);
      for (const { arm, seed } of arms) {
        announce(photos.name, arm.name, seed);
        const r = await runPhotoArm(ctx, photos, arm, seed);
        if (!r) return stopped(o.out, started, index);
        (f.arms[arm.name] ??= []).push(r);
      }
      findings.push(f);
    }
  } finally {
    photos?.close();
  }
  for (const f of findings)
    await drawFigures(
      o,
      f,
      datasets.find((d) => d.name === f.dataset),
      claims,
      scale,
    );
  const distinct = new Map<string, RunResult>();
  for (const f of findings)
    for (const r of [...f.sweep, ...f.curves.relu, ...f.curves.tanh, ...Object.values(f.arms).flat(), ...f.biases.one, ...f.biases.zero])
      distinct.set(`${r.dataset}/${r.arm}/${r.seed}`, r);
  const header = {
    command: o.command,
    date: new Date().toISOString().slice(0, 10),
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, the ${o.backend.name} backend`,
    ...addTime(o.out, started),
    trainingSeconds: [...distinct.values()].reduce((sum, r) => sum + r.wallSeconds, 0),
    runs: distinct.size,
  };
  const report = reportMarkdown(header, findings, claims);
  writeFileAtomic(join(o.out, 'results.json'), JSON.stringify({ header, scale, claims, findings }, null, 1));
  writeFileAtomic(join(o.out, 'REPORT.md'), report);
  return { interrupted: false, report, runs: distinct.size };
}

/** Every run on one dataset; undefined when interrupted. */
async function reproduceOn(
  d: Prepared,
  scale: Scale,
  claims: readonly Claim[],
  run: (p: Planned) => Promise<RunResult | undefined>,
): Promise<DatasetFindings | undefined> {
  const { threshold, why } = THRESHOLDS[d.name]!;
  const f = emptyFindings(d.name, titleOf(d), d.shape[0] === 3, d.classes, imageCount(d.train), imageCount(d.test));
  f.threshold = threshold;
  f.thresholdWhy = why;
  if (claims.includes('relu')) {
    for (const p of plannedSweep(d, scale)) {
      const r = await run(p);
      if (!r) return undefined;
      f.sweep.push(r);
    }
    f.rates = { relu: chosenRate(f.sweep, 'relu', threshold, d.classes), tanh: chosenRate(f.sweep, 'tanh', threshold, d.classes) };
    for (const activation of ['relu', 'tanh'] as const) {
      const arm = curveArms(d, scale, f.rates[activation]).find((a) => a.name.startsWith(activation))!;
      for (let seed = 1; seed <= scale.seeds; seed++) {
        const r = await run({ dataset: d, arm, seed });
        if (!r) return undefined;
        f.curves[activation].push(r);
      }
    }
  }
  for (const p of plannedAblations(d, scale, claims)) {
    const r = await run(p);
    if (!r) return undefined;
    if (p.arm.name === 'biases-one') f.biases.one.push(r);
    else if (p.arm.name === 'biases-zero') f.biases.zero.push(r);
    else (f.arms[p.arm.name] ??= []).push(r);
  }
  return f;
}

/** Mean over runs of a per-epoch (or per-step) series, point by point. */
function meanSeries(series: number[][]): number[] {
  const length = Math.min(...series.map((s) => s.length));
  return Array.from({ length }, (_, i) => series.reduce((a, s) => a + s[i]!, 0) / series.length);
}

async function drawFigures(
  o: ReproduceOptions,
  f: DatasetFindings,
  d: Prepared | undefined,
  claims: readonly Claim[],
  scale: Scale,
): Promise<void> {
  const save = async (key: string, png: Promise<Buffer>) => {
    const file = `${key}-${f.dataset}.png`;
    writeFileAtomic(join(o.out, file), await png);
    f.figures[key] = file;
  };
  const epochsOf = (values: number[], series: string, style?: string): LinePoint[] =>
    values.map((y, i) => ({ x: i + 1, y, series, ...(style ? { style } : {}) }));
  if (f.curves.relu.length > 0) {
    const points = (['relu', 'tanh'] as const).flatMap((a) => {
      const name = a === 'relu' ? 'ReLU' : 'tanh';
      return epochsOf(meanSeries(f.curves[a].map((r) => r.metrics.map((m) => m.trainError))), name, name);
    });
    await save(
      'relu',
      lineChartPng({
        points,
        x: 'epoch',
        y: 'training error',
        title: `Figure 1 on ${f.title}: the four-layer net`,
        percent: true,
        rule: { y: f.threshold, label: `${(100 * f.threshold).toFixed(0)} %` },
      }),
    );
  }
  const arms = Object.entries(f.arms);
  if (arms.length > 1) {
    const stats = (xs: number[]) => ({ mean: mean(xs), sd: sd(xs) });
    const bars = arms.flatMap(([arm, runs]) => [
      { category: arm, series: 'training error', ...stats(runs.map((r) => r.train.top1Error)) },
      { category: arm, series: 'test error', ...stats(runs.map((r) => r.test.top1Error)) },
    ]);
    await save('arms', barChartPng({ bars, y: 'error (mean ± sd over seeds)', title: `Every arm on ${f.title}`, percent: true }));
  }
  const withDropout = f.arms.reference ?? [],
    without = f.arms['no-dropout'] ?? [];
  if (claims.includes('dropout') && withDropout.length > 0 && without.length > 0) {
    const points = [
      [withDropout, 'dropout 0.5'],
      [without, 'no dropout'],
    ].flatMap(([runs, series]) => [
      ...epochsOf(meanSeries((runs as RunResult[]).map((r) => r.metrics.map((m) => m.trainError))), series as string, 'training'),
      ...epochsOf(meanSeries((runs as RunResult[]).map((r) => r.metrics.map((m) => m.valTop1Error))), series as string, 'validation'),
    ]);
    await save('dropout', lineChartPng({ points, x: 'epoch', y: 'error', title: `Dropout on ${f.title}`, percent: true }));
  }
  if (f.biases.one.length > 0) {
    const points = [
      [f.biases.one, 'biases 1'],
      [f.biases.zero, 'biases 0'],
    ].flatMap(([runs, series]) =>
      meanSeries((runs as RunResult[]).map((r) => r.stepLosses!)).map((y, i) => ({ x: i + 1, y, series: series as string })),
    );
    const chance = { y: Math.log(f.classes), label: `chance, ln ${f.classes}` };
    await save(
      'biases',
      lineChartPng({ points, x: 'step', y: 'training loss', title: `Biases of 1 against 0 on ${f.title}`, rule: chance }),
    );
  }
  const reference = join(runFolder(o.out, f.dataset, 'reference', 1), RUN_CHECKPOINTS.last);
  if (!f.arms.reference?.length) return;
  const checkpoint = readCheckpoint(reference);
  const first = firstConvolution(checkpoint.spec);
  if (claims.includes('filters') && first) {
    const weight = checkpoint.params[`${first.name}.weight`]!;
    await save('filters', filterGridPng(weight.data, weight.shape, { columns: first.columns, scale: 12 }));
    f.filters = {
      file: f.figures.filters!,
      columns: first.columns,
      ...(weight.shape[1] === 3 ? { colourShare: colourShare(weight.data, weight.shape, first.columns) } : {}),
    };
  }
  if (claims.includes('neighbours') && d) await findNeighbours(o, f, d, checkpoint, scale, save);
}

async function findNeighbours(
  o: ReproduceOptions,
  f: DatasetFindings,
  d: Prepared,
  checkpoint: ReturnType<typeof readCheckpoint>,
  scale: Scale,
  save: (key: string, png: Promise<Buffer>) => Promise<void>,
): Promise<void> {
  const inputs = f.arms.reference![0]!.settings.inputs;
  const std = inputs === 'pixels' ? 1 / 255 : d.std;
  const net = Net.build(checkpoint.spec, { backend: o.backend, batch: 100, inference: true, weights: checkpoint.params });
  try {
    const queries = firstImages(d.test, scale.neighbourQueries);
    const database = datasetImages(d.train, d.mean, std);
    const inLayer = await searchNeighbours(net, database.inputs, datasetImages(queries, d.mean, std).inputs);
    const inPixels = searchPixels(d.train, queries);
    // the figure: the first query of each of six classes, with the neighbours found for it above
    const shown: number[] = [];
    for (let i = 0; i < imageCount(queries) && shown.length < 6; i++)
      if (!shown.some((j) => queries.labels[j] === queries.labels[i])) shown.push(i);
    const figure = drawNeighbours(
      net,
      database,
      datasetImages(subset(queries, shown, queries.source), d.mean, std),
      { layer: inLayer.layer, neighbours: shown.map((q) => inLayer.neighbours[q]!) },
      {
        ...(d.classNames ? { classNames: d.classNames } : {}),
        title: `Five nearest training images in ${inLayer.layer} (${f.title})`,
      },
    );
    await save('neighbours', figure);
    f.neighbours = {
      file: f.figures.neighbours!,
      layer: inLayer.layer,
      queries: imageCount(queries),
      featureAgreement: labelAgreement(inLayer.neighbours, d.train.labels, queries.labels),
      pixelAgreement: labelAgreement(inPixels.neighbours, d.train.labels, queries.labels),
    };
  } finally {
    net.dispose();
  }
}

function emptyFindings(
  dataset: string,
  title: string,
  colour: boolean,
  classes: number,
  trainImages: number,
  testImages: number,
): DatasetFindings {
  return {
    dataset,
    title,
    colour,
    classes,
    trainImages,
    testImages,
    threshold: 0,
    thresholdWhy: '',
    sweep: [],
    curves: { relu: [], tanh: [] },
    arms: {},
    biases: { one: [], zero: [] },
    figures: {},
  };
}

/** The photo arms a reproduction's claims need, seed by seed. */
function photoRuns(photos: PhotoSet, scale: Scale, claims: readonly Claim[]): { arm: Arm; seed: number }[] {
  if (!claims.includes('augmentation') && !claims.includes('filters')) return [];
  const arms = photoArms(scale, photos.classes, photos.train.count).filter(
    (a) => claims.includes('augmentation') || a.name === 'reference',
  );
  return Array.from({ length: scale.seeds }, (_, k) => arms.map((arm) => ({ arm, seed: k + 1 }))).flat();
}

/** The wall time of every invocation of the command on one folder (an interrupted reproduction's
 * included), kept in DIR/time.json. */
function addTime(out: string, started: number): { seconds: number; invocations: number } {
  const path = join(out, 'time.json');
  const before = existsSync(path)
    ? readJson<{ seconds: number; invocations: number }>(path, 'delete it (the report then counts this invocation alone)')
    : { seconds: 0, invocations: 0 };
  const now = { seconds: before.seconds + (performance.now() - started) / 1000, invocations: before.invocations + 1 };
  writeFileAtomic(path, JSON.stringify(now));
  return now;
}

function stopped(out: string, started: number, runs: number): Reproduction {
  addTime(out, started);
  return { interrupted: true, runs };
}
