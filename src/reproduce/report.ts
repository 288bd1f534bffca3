/**
 * The reproduction's report: one row per claim of the paper (its statement and number, our setting,
 * our result over seeds, a verdict with its reason), then a section per experiment with its figure.
 * Results are means ± sample standard deviations over seeds; differences between two arms are
 * paired by seed, and an effect counts when its mean exceeds twice its standard error.
 */
import type { EpochMetrics } from '../train/run-store.js';
import type { Claim, RunResult } from './reproduce.js';
import { epochsTo } from './reproduce.js';

export interface DatasetFindings {
  /** Its folder name under runs/ and in figure names. */
  dataset: string;
  /** For people: "Fashion-MNIST (28×28 grey)". */
  title: string;
  colour: boolean;
  classes: number;
  trainImages: number;
  testImages: number;
  /** Figure 1's training-error threshold, and why it was chosen. */
  threshold: number;
  thresholdWhy: string;
  rates?: { relu: number; tanh: number };
  sweep: RunResult[];
  curves: { relu: RunResult[]; tanh: RunResult[] };
  arms: Record<string, RunResult[]>;
  biases: { one: RunResult[]; zero: RunResult[] };
  filters?: { file: string; columns: number; colourShare?: number[] };
  neighbours?: { file: string; layer: string; queries: number; featureAgreement: number; pixelAgreement: number };
  figures: Record<string, string>;
}

export interface Row {
  claim: string;
  paper: string;
  setting: string;
  result: string;
  verdict: 'agrees' | 'disagrees' | 'not testable here';
  reason: string;
}

/** The mean and the sample standard deviation (0 for one value) of seeds' results. */
export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
const pm = (xs: number[], f: (x: number) => string = pct) =>
  xs.length > 1 ? `${f(mean(xs))} ± ${f(sd(xs)).replace(' %', '')}` : f(xs[0]!);
const fixed = (digits: number) => (x: number) => x.toFixed(digits);

/** A paired effect: `better` should be lower than `worse` seed by seed. */
function effect(worse: number[], better: number[]) {
  const n = Math.min(worse.length, better.length);
  const d = Array.from({ length: n }, (_, i) => worse[i]! - better[i]!);
  const m = mean(d),
    error = sd(d) / Math.sqrt(n);
  return { mean: m, sd: sd(d), n, clear: n >= 2 ? m > 2 * error : m > 0, against: n >= 2 ? m < -2 * error : m < 0 };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function seedsNote(n: number): string {
  return n < 3 ? ` (${n} seed${n === 1 ? '' : 's'}: too few for a spread)` : '';
}

function verdictOf(e: ReturnType<typeof effect>, what: string): Pick<Row, 'verdict' | 'reason'> {
  const size = `${(100 * e.mean).toFixed(2)} ± ${(100 * e.sd).toFixed(2)} points`;
  if (e.clear) return { verdict: 'agrees', reason: `${what} by ${size}, beyond the seeds' spread${seedsNote(e.n)}` };
  if (e.against)
    return {
      verdict: 'disagrees',
      reason: `the opposite of the claim: ${(-100 * e.mean).toFixed(2)} points the other way${seedsNote(e.n)}`,
    };
  return { verdict: 'disagrees', reason: `no effect beyond the seeds' spread here (${size})${seedsNote(e.n)}` };
}

/** ", seed 2 diverged" for the runs that did. */
const diverged = (runs: RunResult[]) =>
  runs
    .filter((r) => r.diverged)
    .map((r) => ` (seed ${r.seed} diverged)`)
    .join('');

const testErrors = (runs: RunResult[]) => runs.map((r) => r.test.top1Error);
const gaps = (runs: RunResult[]) => runs.map((r) => r.test.top1Error - r.train.top1Error);

/** Epochs until the validation error first comes within half a point of the run's final one. */
export function epochsToSettle(metrics: EpochMetrics[]): number {
  const final = metrics.at(-1)?.valTop1Error;
  if (final === undefined) return NaN;
  return metrics.findIndex((m) => m.valTop1Error <= final + 0.005) + 1;
}

export function claimRows(f: DatasetFindings, claims: readonly Claim[]): Row[] {
  const rows: Row[] = [];
  const setting = (arms: string, epochs: number, seeds: number) =>
    `${f.title}, ${f.trainImages.toLocaleString('en')} training images; ${arms}; ${epochs} epochs; ${plural(seeds, 'seed')}`;
  const arm = (name: string) => f.arms[name] ?? [];
  const reference = arm('reference');
  const epochs = reference[0]?.settings.epochs ?? 0;
  if (claims.includes('relu') && f.curves.relu.length > 0) rows.push(reluRow(f));
  const ablation = (claim: string, paper: string, other: string, what: string, extra = ''): void => {
    const o = arm(other);
    if (o.length === 0 || reference.length === 0) return;
    const e = effect(testErrors(o), testErrors(reference));
    rows.push({
      claim,
      paper,
      setting: setting(`the scaled AlexNet against ${o[0]!.describe}`, epochs, o.length),
      result: `test error ${pm(testErrors(reference))} against ${pm(testErrors(o))}${extra}${diverged([...reference, ...o])}`,
      ...verdictOf(e, what),
    });
  };
  if (claims.includes('lrn'))
    ablation(
      'LRN lowers the error (3.3)',
      'ImageNet top-1 −1.4 %, top-5 −1.2 %; CIFAR-10 13 % → 11 %',
      'no-lrn',
      'LRN lowers the test error',
    );
  if (claims.includes('pooling')) {
    const o = arm('pool-2x2');
    const gap = o.length > 0 ? `; train–test gap ${pm(gaps(reference))} against ${pm(gaps(o))}` : '';
    ablation(
      'Overlapping pooling lowers the error (3.4)',
      'top-1 −0.4 %, top-5 −0.3 %; overfits slightly less',
      'pool-2x2',
      'overlapping pools lower the test error',
      gap,
    );
  }
  if (claims.includes('dropout') && arm('no-dropout').length > 0 && reference.length > 0) {
    const o = arm('no-dropout');
    rows.push({
      claim: 'Without dropout the net overfits substantially (4.2)',
      paper: 'substantial overfitting without dropout',
      setting: setting('dropout 0.5 on fc6 and fc7 against none', epochs, o.length),
      result:
        `train–test gap ${pm(gaps(reference))} with dropout, ${pm(gaps(o))} without; ` +
        `test error ${pm(testErrors(reference))} against ${pm(testErrors(o))}`,
      ...verdictOf(effect(gaps(o), gaps(reference)), 'dropout narrows the gap between training and test error'),
    });
    const settle = (runs: RunResult[]) => runs.map((r) => epochsToSettle(r.metrics));
    const [a, b] = [mean(settle(reference)), mean(settle(o))];
    rows.push({
      claim: 'Dropout roughly doubles the iterations to converge (4.2)',
      paper: '≈ 2× the iterations',
      setting: setting('epochs until the validation error is within 0.5 points of its final value', epochs, o.length),
      result: `${pm(settle(reference), fixed(1))} epochs with dropout, ${pm(settle(o), fixed(1))} without (${(a / b).toFixed(2)}×)`,
      verdict: a / b >= 1.5 ? 'agrees' : 'disagrees',
      reason:
        a / b >= 1.5
          ? `dropout took ${(a / b).toFixed(2)}× the epochs`
          : `${(a / b).toFixed(2)}× here; with the learning rate decaying to 0 over a fixed number of epochs both settle near the end`,
    });
  }
  if (claims.includes('augmentation')) augmentationRows(f, rows, setting, epochs);
  if (claims.includes('columns')) {
    const half = arm('one-column-half'),
      full = arm('one-column-full');
    if (half.length > 0 && reference.length > 0) {
      const time = (runs: RunResult[]) => `${mean(runs.map((r) => r.wallSeconds)).toFixed(0)} s`;
      rows.push({
        claim: 'Two columns beat one with half the kernels (3.2)',
        paper: 'top-1 −1.7 %, top-5 −1.2 %; the two-GPU net trains slightly faster',
        setting: setting(
          `two columns against ${half[0]!.describe}, and against ${full[0]?.describe ?? 'one full column'}`,
          epochs,
          half.length,
        ),
        result:
          `test error ${pm(testErrors(reference))} (two columns), ${pm(testErrors(half))} (half), ` +
          `${full.length ? pm(testErrors(full)) : '—'} (one full column); ` +
          `training ${time(reference)}, ${time(half)}, ${full.length ? time(full) : '—'}`,
        ...verdictOf(effect(testErrors(half), testErrors(reference)), 'two columns lower the test error'),
      });
    }
  }
  if (claims.includes('biases') && f.biases.one.length > 0) rows.push(biasRow(f));
  if (claims.includes('filters') && f.filters) rows.push(filterRow(f));
  if (claims.includes('neighbours') && f.neighbours) {
    const n = f.neighbours;
    rows.push({
      claim: 'Images near in the last hidden layer are alike (Figure 4)',
      paper: "the training images nearest in the 4096-d layer share the query's class, though not close in pixels",
      setting:
        `${f.title}: ${n.queries.toLocaleString('en')} test images, their 5 nearest of the training images ` +
        `in ${n.layer} (Euclidean), reference arm, seed 1`,
      result: `${pct(n.featureAgreement)} of the neighbours share the query's class in ${n.layer}; ${pct(n.pixelAgreement)} in pixel space`,
      verdict: n.featureAgreement > n.pixelAgreement ? 'agrees' : 'disagrees',
      reason:
        n.featureAgreement > n.pixelAgreement
          ? `the hidden layer's neighbours agree more often than the pixels' (${(100 * (n.featureAgreement - n.pixelAgreement)).toFixed(1)} points)`
          : 'pixel-space neighbours agree as often',
    });
  }
  return rows;
}

function reluRow(f: DatasetFindings): Row {
  const start = 1 - 1 / f.classes;
  const reach = (runs: RunResult[]) =>
    runs.map((r) =>
      epochsTo(
        r.metrics.map((m) => m.trainError),
        f.threshold,
        start,
      ),
    );
  const wallTo = (runs: RunResult[]) =>
    runs.map((r) => {
      const e = epochsTo(
        r.metrics.map((m) => m.trainError),
        f.threshold,
        start,
      );
      if (e === undefined) return undefined;
      const whole = Math.floor(e),
        seconds = (k: number) => (k === 0 ? 0 : r.metrics[k - 1]!.wallSeconds);
      return seconds(whole) + (e - whole) * (seconds(Math.min(whole + 1, r.metrics.length)) - seconds(whole));
    });
  const relu = reach(f.curves.relu),
    tanh = reach(f.curves.tanh);
  const epochs = f.curves.relu[0]!.settings.epochs;
  const show = (xs: (number | undefined)[]) =>
    xs.every((x) => x !== undefined)
      ? pm(xs as number[], fixed(2))
      : `${xs.filter((x) => x !== undefined).length} of ${xs.length} seeds reached it`;
  const both = relu.every((x) => x !== undefined) && tanh.every((x) => x !== undefined);
  const reluAlone = relu.every((x) => x !== undefined) && !tanh.every((x) => x !== undefined);
  const ratio = both ? mean(tanh as number[]) / mean(relu as number[]) : undefined;
  const wall = both ? mean(wallTo(f.curves.tanh) as number[]) / mean(wallTo(f.curves.relu) as number[]) : undefined;
  const faster = both && relu.every((r, i) => r! < tanh[i]!);
  return {
    claim: 'ReLUs train several times faster than tanh units (Figure 1)',
    paper: 'a four-layer CNN reaches 25 % training error on CIFAR-10 6× faster with ReLUs',
    setting:
      `${f.title}, ${f.trainImages.toLocaleString('en')} training images; the four-layer net, no regularisation, ε tuned per activation ` +
      `(ReLU ${f.rates?.relu}, tanh ${f.rates?.tanh}); threshold ${pct(f.threshold)} training error; ` +
      `${epochs} epochs; ${plural(f.curves.relu.length, 'seed')}`,
    result:
      `epochs to ${pct(f.threshold)}: ReLU ${show(relu)}, tanh ${show(tanh)}` +
      (ratio !== undefined ? ` (${ratio.toFixed(2)}× fewer epochs, ${wall!.toFixed(2)}× less time)` : ''),
    verdict: faster || reluAlone ? 'agrees' : 'disagrees',
    reason: reluAlone
      ? `tanh did not reach ${pct(f.threshold)} within ${epochs} epochs`
      : faster
        ? `ReLU reached it first in every seed, ${ratio!.toFixed(1)}× sooner here against the paper's 6×`
        : 'ReLU did not reach it first in every seed',
  };
}

function augmentationRows(f: DatasetFindings, rows: Row[], setting: (a: string, e: number, s: number) => string, epochs: number): void {
  const reference = f.arms.reference ?? [],
    plain = f.arms['no-augmentation'] ?? [];
  if (reference.length === 0 || plain.length === 0) return;
  rows.push({
    claim: 'Without crops and flips the net overfits (4.1)',
    paper: 'substantial overfitting without the crops and reflections',
    setting: setting('random crops of the image padded by 2 pixels and flips against none', epochs, plain.length),
    result:
      `train–test gap ${pm(gaps(reference))} with, ${pm(gaps(plain))} without; ` +
      `test error ${pm(testErrors(reference))} against ${pm(testErrors(plain))}`,
    ...verdictOf(effect(gaps(plain), gaps(reference)), 'crops and flips narrow the gap between training and test error'),
  });
  const noPca = f.arms['no-pca'] ?? [];
  rows.push(
    noPca.length > 0
      ? {
          claim: 'PCA colour noise lowers the error (4.1)',
          paper: 'top-1 −1 %',
          setting: setting('colour noise σ 0.1 along the RGB principal components against none', epochs, noPca.length),
          result: `test error ${pm(testErrors(reference))} with, ${pm(testErrors(noPca))} without${diverged([...reference, ...noPca])}`,
          ...verdictOf(effect(testErrors(noPca), testErrors(reference)), 'colour noise lowers the test error'),
        }
      : {
          claim: 'PCA colour noise lowers the error (4.1)',
          paper: 'top-1 −1 %',
          setting: f.title,
          result: '—',
          verdict: 'not testable here',
          reason: 'the images have one channel: there is no colour to perturb (give --cifar)',
        },
  );
  const ten = reference.filter((r) => r.tenPatch);
  if (ten.length === 0) return;
  rows.push({
    claim: 'The ten-patch test beats the centre patch (4.1)',
    paper: "averaging the softmax of the four corner and centre patches and their reflections (the paper's test-time method)",
    setting: setting(
      'the reference arm (trained on padded crops and flips) scored on the centre view and on the ten patches of the padded image',
      epochs,
      ten.length,
    ),
    result: `test error ${pm(ten.map((r) => r.test.top1Error))} centre, ${pm(ten.map((r) => r.tenPatch!.top1Error))} ten patches`,
    ...verdictOf(
      effect(
        ten.map((r) => r.test.top1Error),
        ten.map((r) => r.tenPatch!.top1Error),
      ),
      'the ten patches lower the test error',
    ),
  });
}

/** The mean loss over each run's first `steps` steps. */
function earlyLoss(runs: RunResult[], steps: number): number[] {
  return runs.map((r) => mean(r.stepLosses!.slice(0, steps)));
}

function biasRow(f: DatasetFindings): Row {
  const steps = Math.min(...[...f.biases.one, ...f.biases.zero].map((r) => r.stepLosses!.length));
  const one = earlyLoss(f.biases.one, steps),
    zero = earlyLoss(f.biases.zero, steps);
  const chance = Math.log(f.classes);
  const e = effect(zero, one);
  const stuck = [...one, ...zero].every((x) => Math.abs(x - chance) < 0.05);
  const s = f.biases.one[0]!.settings;
  return {
    claim: 'Biases of 1 accelerate the early stages of learning (5)',
    paper: 'biases 1 in conv2, conv4, conv5, fc6, fc7 give the ReLUs positive inputs',
    setting:
      `${f.title}, ${f.trainImages.toLocaleString('en')} training images; the scaled AlexNet, weights N(0, 0.01) on raw pixel values ` +
      `less the mean (the paper's input scale), ε ${s.lr}, batch ${s.batch}; mean loss over the first ${steps} steps; ${plural(one.length, 'seed')}`,
    result: `${pm(one, fixed(4))} with biases 1, ${pm(zero, fixed(4))} with biases 0 (chance: ln ${f.classes} = ${chance.toFixed(4)})`,
    ...(stuck
      ? { verdict: 'not testable here' as const, reason: 'neither initialisation left chance within these steps' }
      : e.clear
        ? { verdict: 'agrees' as const, reason: `biases of 1 lowered the early loss by ${e.mean.toFixed(4)}${seedsNote(e.n)}` }
        : {
            verdict: 'disagrees' as const,
            reason: `biases of 1 did not lower the early loss (${(-e.mean).toFixed(4)} higher)${seedsNote(e.n)}`,
          }),
  };
}

function filterRow(f: DatasetFindings): Row {
  const filters = f.filters!;
  const share = filters.colourShare;
  const base = {
    claim: "The columns' first-layer kernels specialise (Figure 3)",
    paper: "one column's kernels largely colour-agnostic, the other's largely colour-specific",
    setting: `${f.title}: conv1 of the reference arm, seed 1; ${filters.columns} column${filters.columns === 1 ? '' : 's'}`,
  };
  if (!share)
    return {
      ...base,
      result: `${filters.file}`,
      verdict: 'not testable here',
      reason: 'the images have one channel: kernels have no colour',
    };
  const [a, b] = share as [number, number];
  const ratio = Math.max(a, b) / Math.max(1e-9, Math.min(a, b));
  return {
    ...base,
    result: `share of kernel energy in colour: ${share.map((x, i) => `column ${i + 1} ${pct(x)}`).join(', ')}`,
    verdict: ratio >= 2 ? 'agrees' : 'disagrees',
    reason:
      ratio >= 2
        ? `one column's kernels carry ${ratio.toFixed(1)}× the colour of the other's`
        : `the columns differ by ${ratio.toFixed(2)}× only`,
  };
}

export interface ReportHeader {
  command: string;
  date: string;
  machine: string;
  /** The wall time of every invocation of the command on this folder, summed. */
  seconds: number;
  invocations: number;
  /** The runs' training time, evaluation excluded, summed. */
  trainingSeconds: number;
  runs: number;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function reportMarkdown(header: ReportHeader, findings: DatasetFindings[], claims: readonly Claim[]): string {
  const duration = (seconds: number) =>
    seconds < 3600
      ? `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
      : `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  const invocations = header.invocations > 1 ? ` (${header.invocations} invocations of the command)` : '';
  const lines = [
    "# The paper's claims, reproduced",
    '',
    `Generated by \`${header.command}\` on ${header.date}, on ${header.machine}, in ${duration(header.seconds)}${invocations}: ` +
      `${header.runs} training runs, ${duration(header.trainingSeconds)} of training (evaluation excluded).`,
    '',
    'Each claim of Krizhevsky, Sutskever and Hinton (2012) is tested by training two or more arms that differ in that one respect alone, ' +
      'on the same images with the same seeds. Results are means ± standard deviations over seeds; a difference between arms is paired ' +
      "by seed and counts when its mean exceeds twice its standard error. Our scale is not the paper's: small images, a scaled " +
      'AlexNet (the same layers, 28×28 or 32×32 inputs, widths 32–64, 512-unit fully connected layers) and a fixed subset of the training ' +
      'images small enough to overfit, so effects the paper measured on 1.2 million ImageNet photos may be smaller or absent here. ' +
      'Top-5 error is not reported for 10 classes, where it is near 0.',
    '',
  ];
  for (const f of findings) {
    const rows = claimRows(f, claims);
    lines.push(`## ${f.title}`, '', '| Claim | The paper | Our setting | Our result | Verdict |', '|---|---|---|---|---|');
    for (const r of rows)
      lines.push(`| ${cell(r.claim)} | ${cell(r.paper)} | ${cell(r.setting)} | ${cell(r.result)} | **${r.verdict}**: ${cell(r.reason)} |`);
    lines.push('');
    lines.push(...sections(f));
  }
  return lines.join('\n') + '\n';
}

function sections(f: DatasetFindings): string[] {
  const out: string[] = [];
  const figure = (key: string, caption: string) => {
    if (f.figures[key]) out.push(`![${caption}](${f.figures[key]})`, '', `*${caption}*`, '');
  };
  if (f.curves.relu.length > 0) {
    out.push('### Figure 1: ReLU against tanh', '');
    out.push(
      `The learning rate of each activation was chosen from ${f.sweep.length / 2} rates on the first seed ` +
        '(fewest epochs to the threshold, then the lowest final training error): ' +
        f.sweep.map((r) => `${r.arm} ${r.diverged ? 'diverged' : pct(r.metrics.at(-1)!.trainError)}`).join(', ') +
        ` final training error. ${f.thresholdWhy} The time to the threshold is training time on this machine: it includes what each ` +
        `activation costs per step here (tanh's kernel evaluates the function per element; the ReLU's is a comparison), ` +
        'not only how fast each net learns.',
      '',
    );
    figure(
      'relu',
      'Training error of the four-layer net per epoch, ReLU (solid) and tanh (dashed), mean over seeds; the dotted line is the threshold.',
    );
  }
  figure(
    'dropout',
    'Training error (with dropout active, solid) and validation error (dashed) per epoch, with and without dropout; mean over seeds.',
  );
  figure('biases', "Training loss over the first steps with the paper's initialisation: biases of 1 against biases of 0; mean over seeds.");
  if (f.filters) {
    out.push("### Figure 3: the first layer's kernels", '');
    figure('filters', `conv1's kernels after training (reference arm, seed 1), one block per column, each kernel scaled to its own range.`);
  }
  if (f.neighbours) {
    out.push('### Figure 4: nearest neighbours in the last hidden layer', '');
    figure('neighbours', `Test images (left), the net's top classes, and the five training images nearest in ${f.neighbours.layer}.`);
  }
  const arms = Object.entries(f.arms);
  if (arms.length > 0) {
    out.push('### Every arm', '');
    figure(
      'arms',
      'Training error (on the training images as they are) and test error of every arm, mean ± one standard deviation over seeds.',
    );
    out.push(
      'A run whose loss ran away (diverged) is counted at chance, and named here.',
      '',
      '| Arm | Seeds | Training error | Test error | Train–test gap | Training time |',
      '|---|---|---|---|---|---|',
    );
    for (const [name, runs] of arms)
      out.push(
        `| ${name}: ${cell(runs[0]!.describe)} | ${runs.length}${diverged(runs)} | ${pm(runs.map((r) => r.train.top1Error))} | ` +
          `${pm(testErrors(runs))} | ${pm(gaps(runs))} | ${mean(runs.map((r) => r.wallSeconds)).toFixed(0)} s |`,
      );
    out.push('');
  }
  return out;
}
