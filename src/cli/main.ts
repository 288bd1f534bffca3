#!/usr/bin/env node
/** The `alexnet` command line. */
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { parseNpy, serializeNpy } from '../io/npy.js';
import { exportOnnx } from '../onnx/export.js';
import { bench, formatBench } from '../bench/bench.js';
import { datasetClassNames, imageCount, loadDataset, parseClassNames, pixelStatistics, subset } from '../data/dataset.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { alexnetSmall } from '../models/alexnet.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import { ReferenceBackend } from '../backend/reference/backend.js';
import { initializers } from '../net/init.js';
import { Net } from '../net/net.js';
import { parseSchedule } from '../train/schedule.js';
import { type EpochMetrics, evaluate, shuffled, train } from '../train/trainer.js';
import { curvesPng, filterGridPng } from '../report/plots.js';
import { streams } from '../random.js';
import { models, resolveModel } from '../models/index.js';
import { formatSummary, planNet, summarize } from '../net/net.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Options several commands share (a fresh Option per command: commander keeps state on them). */
const trainedModelOption = () => new Option('--model <run-dir|checkpoint>', 'a run folder (uses best.safetensors) or a checkpoint file').makeOptionMandatory();
const threadsOption = () => new Option('--threads <n>', 'threads (default: available cores)').argParser(positiveInt).default(availableParallelism());
const replicasOption = () => new Option('--replicas <n>', 'split each batch over n replicas of the net, one per thread (data parallelism)').argParser(positiveInt).default(1);

const program = new Command('alexnet')
  .description('AlexNet in TypeScript: train, evaluate, run and benchmark AlexNet-class networks')
  .showHelpAfterError('(run with --help for usage)');

program.command('info')
  .description('layers, output shapes, parameters and multiply-adds of a model')
  .requiredOption('--model <name|spec.json>', `a zoo model (${Object.keys(models).join(', ')}) or a JSON net spec`)
  .option('--batch <n>', 'batch size for the shapes', positiveInt, 1)
  .option('--json', 'print one JSON object')
  .action((opts: { model: string; batch: number; json?: boolean }) => {
    const spec = resolveModel(opts.model);
    const rows = summarize(planNet(spec, opts.batch));
    if (opts.json) {
      console.log(JSON.stringify({
        model: spec.name ?? opts.model, inputs: spec.inputs, layers: rows,
        params: rows.reduce((n, r) => n + r.params, 0), macsPerExample: rows.reduce((n, r) => n + r.macsPerExample, 0),
      }));
    } else {
      console.log(`${spec.name ?? opts.model}: inputs ${Object.entries(spec.inputs).map(([k, v]) => `${k} [${v.join(', ')}]`).join(', ')}`);
      console.log(formatSummary(rows));
    }
  });

program.command('bench')
  .description('time inference or a training step (forward, backward, SGD update)')
  .requiredOption('--model <name|spec.json>', 'a zoo model or a JSON net spec')
  .addOption(new Option('--mode <mode>', 'what to time').choices(['train', 'infer']).default('infer'))
  .option('--batch <n>', 'batch size', positiveInt, 64)
  .addOption(threadsOption())
  .option('--steps <n>', 'timed steps after one warm-up', positiveInt, 3)
  .addOption(replicasOption())
  .addOption(new Option('--backend <name>', 'backend').choices(['wasm', 'reference']).default('wasm'))
  .option('--json', 'print one JSON object')
  .action(async (opts: { model: string; mode: 'train' | 'infer'; batch: number; threads: number; steps: number; replicas: number; backend: 'wasm' | 'reference'; json?: boolean }) => {
    const result = await bench({ spec: resolveModel(opts.model), mode: opts.mode, batch: opts.batch, threads: opts.threads, steps: opts.steps, replicas: opts.replicas, backend: opts.backend });
    console.log(opts.json ? JSON.stringify(result) : formatBench(result));
  });

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a non-negative number');
  return n;
}

/** A progress line with images/s and ETA, redrawn in place on a terminal, silent otherwise. */
function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}\x1b[K`);
}

program.command('train')
  .description('train a model on an image dataset (a folder of MNIST/Fashion-MNIST IDX files or CIFAR-10/100 binary batches)')
  .requiredOption('--data <dir>', 'dataset folder')
  .requiredOption('--out <dir>', 'run folder: checkpoints and metrics.jsonl')
  .option('--model <name|spec.json>', 'default: the scaled AlexNet matching the image size')
  .option('--epochs <n>', 'epochs (the default recipe: ~11 min for Fashion-MNIST on 2 cores)', positiveInt, 5)
  .option('--batch <n>', 'batch size', positiveInt, 64)
  .option('--lr <x>', 'learning rate ε (the peak, with a warm-up)', positiveNumber, 0.05)
  .option('--momentum <x>', 'momentum', positiveNumber, 0.9)
  .option('--weight-decay <x>', 'weight decay', positiveNumber, 0.0005)
  .option('--schedule <s>', 'plateau[:patience[:maxDrops]] (the paper) | steps:E1,E2 (epochs or % of --epochs) | linear[:warmupEpochs] | constant', 'linear:0.3')
  .option('--val <n>', 'training images held out for validation', positiveInt, 5000)
  .addOption(new Option('--init <scheme>', 'parameter initialisation').choices(Object.keys(initializers)).default('kaiming'))
  .option('--crop-pad <n>', 'random crops from images padded by n pixels (0: none)', (v) => Math.floor(positiveNumber(v)), 0)
  .option('--no-flip', 'no random horizontal flips')
  .addOption(threadsOption())
  .addOption(replicasOption())
  .option('--seed <n>', 'random seed', (v) => Math.floor(positiveNumber(v)), 0)
  .option('--class-names <file|list>', "names for predict: a file (one per line) or a comma-separated list (default: the dataset folder's own)")
  .option('--resume', 'continue the run in --out from its last checkpoint')
  .action(async (opts: { data: string; out: string; model?: string; epochs: number; batch: number; lr: number; momentum: number; weightDecay: number; schedule: string; val: number; init: string; cropPad: number; flip: boolean; threads: number; replicas: number; seed: number; classNames?: string; resume?: boolean }) => {
    const schedule = parseSchedule(opts.schedule, opts.epochs);
    const { train: all, test } = loadDataset(opts.data);
    if (opts.val >= imageCount(all)) throw new Error(`--val ${opts.val} leaves no training images (the set has ${imageCount(all)})`);
    const order = shuffled(imageCount(all), opts.seed, streams.validationSplit);
    const validation = subset(all, order.subarray(0, opts.val), `${all.source} (validation)`);
    const trainSet = subset(all, order.subarray(opts.val), all.source);
    const [channels, height] = trainSet.shape;
    const spec = opts.model ? resolveModel(opts.model) : height === 28 || height === 32 ? alexnetSmall({ inputSize: height, channels, classes: trainSet.classes }) : (() => { throw new Error(`no default model for ${height}×${height} images; pass --model`); })();
    const classNames = opts.classNames !== undefined ? parseClassNames(opts.classNames) : datasetClassNames(opts.data);
    if (classNames && classNames.length !== trainSet.classes) throw new Error(`${classNames.length} class names for a dataset of ${trainSet.classes} classes`);
    const { mean, std } = pixelStatistics(trainSet);
    const backend = await WasmBackend.create({ threads: opts.threads });
    let stop = false;
    process.on('SIGINT', () => { stop = true; });
    const start = performance.now();
    const { net } = await train({
      spec, backend, train: trainSet, validation, outDir: opts.out, epochs: opts.epochs, batch: opts.batch, lr: opts.lr,
      momentum: opts.momentum, weightDecay: opts.weightDecay, schedule, seed: opts.seed, init: opts.init as keyof typeof initializers, replicas: opts.replicas,
      augment: { pad: opts.cropPad, flip: opts.flip }, mean, std, classNames, resume: opts.resume, interrupted: () => stop,
      onProgress: (p) => progress(`epoch ${p.epoch} ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} images/s  ETA ${((p.batches - p.batch) * opts.batch / p.imagesPerSecond).toFixed(0)} s`),
      onEpoch: (m) => { progress(''); console.log(`epoch ${m.epoch}: loss ${m.loss.toFixed(4)}, train error ${(100 * m.trainError).toFixed(2)}%, validation top-1 error ${(100 * m.valTop1Error).toFixed(2)}%, lr ${m.lr}, ${m.imagesPerSecond.toFixed(0)} images/s`); },
    });
    if (stop) {
      console.log(`interrupted: saved ${join(opts.out, 'last.safetensors')}; continue with --resume`);
    } else {
      const history = readFileSync(join(opts.out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochMetrics);
      writeFileSync(join(opts.out, 'curves.png'), await curvesPng(history));
      const conv1 = net.params.find((p) => p.shape.length === 4);
      if (conv1) writeFileSync(join(opts.out, 'conv1-filters.png'), await filterGridPng(await conv1.value.read(), conv1.shape));
      const evaluated = await evaluate(net, test, mean, std, { mirror: opts.flip });
      const result = evaluated.singleView ?? evaluated;
      const mirrored = opts.flip ? ` (${(100 * evaluated.top1).toFixed(2)}% averaged with mirror images)` : '';
      console.log(`test accuracy ${(100 * result.top1).toFixed(2)}%${mirrored} (top-5 ${(100 * result.top5).toFixed(2)}%) on ${result.count} images, ${((performance.now() - start) / 1000).toFixed(0)} s`);
    }
    await backend.dispose();
  });

program.command('eval')
  .description('accuracy and loss of a trained model on a dataset (its test split)')
  .addOption(trainedModelOption())
  .requiredOption('--data <dir>', 'dataset folder')
  .option('--batch <n>', 'batch size', positiveInt, 100)
  .addOption(threadsOption())
  .option('--mirror', "average each image's prediction with its mirror image's (the paper's test-time reflections)")
  .option('--json', 'print {"top1", "top5", "loss", "count"}')
  .action(async (opts: { model: string; data: string; batch: number; threads: number; mirror?: boolean; json?: boolean }) => {
    const trained = await loadTrained(opts.model, opts.batch, opts.threads);
    const { test } = loadDataset(opts.data);
    const { net, path } = trained;
    const [channels, height, width] = net.shapeOf(net.inputNames[0]!).slice(1);
    if (channels !== test.shape[0] || height !== test.shape[1] || width !== test.shape[2]) {
      throw new Error(`${path}: the model takes ${channels}×${height}×${width} images, ${test.source} holds ${test.shape.join('×')}`);
    }
    const result = await evaluate(net, test, trained.mean, trained.std, { mirror: opts.mirror });
    console.log(opts.json ? JSON.stringify(result) : `top-1 accuracy ${(100 * result.top1).toFixed(2)}%, top-5 ${(100 * result.top5).toFixed(2)}%, loss ${result.loss.toFixed(4)} on ${result.count} images`);
    await trained.backend.dispose();
  });

program.command('run')
  .description('logits for a raw float32 NCHW tensor (.npy in, .npy out): batch jobs and parity checks')
  .addOption(trainedModelOption())
  .requiredOption('--input <x.npy>', 'float32 (or float64) array [N, C, H, W], already normalised')
  .requiredOption('--output <y.npy>', 'where the logits [N, classes] go')
  .addOption(threadsOption())
  .action(async (opts: { model: string; input: string; output: string; threads: number }) => {
    const input = parseNpy(readBytes(opts.input), opts.input);
    const trained = await loadTrained(opts.model, input.shape[0] ?? 1, opts.threads);
    const { net } = trained;
    const expected = net.shapeOf(net.inputNames[0]!);
    if (input.shape.join() !== expected.join()) throw new Error(`${opts.input}: shape [${input.shape.join(', ')}] does not match the model's input [N, ${expected.slice(1).join(', ')}]`);
    net.setInput(net.inputNames[0]!, input.data);
    net.forward();
    writeFileSync(opts.output, serializeNpy(net.shapeOf(trained.logits), await net.read(trained.logits)));
    await trained.backend.dispose();
  });

program.command('predict')
  .description('top-K classes of image files (decoded with sharp, resized to the model input)')
  .addOption(trainedModelOption())
  .argument('<images...>', 'image files (PNG, JPEG, WebP, …)')
  .option('--top <k>', 'classes to list', positiveInt, 3)
  .addOption(threadsOption())
  .option('--json', 'print a JSON array, one entry per image')
  .action(async (images: string[], opts: { model: string; top: number; threads: number; json?: boolean }) => {
    const trained = await loadTrained(opts.model, images.length, opts.threads);
    const { net } = trained;
    const [channels, height, width] = net.shapeOf(net.inputNames[0]!).slice(1) as [number, number, number];
    const size = channels * height * width;
    const x = new Float32Array(images.length * size);
    for (const [i, file] of images.entries()) {
      let pixels: Buffer;
      try {
        let image = sharp(file).resize(width, height, { fit: 'fill' }).removeAlpha();
        if (channels === 1) image = image.grayscale();
        pixels = await image.raw().toBuffer();
      } catch (error) {
        throw new Error(`cannot decode image ${file}: ${(error as Error).message}`);
      }
      if (pixels.length !== size) throw new Error(`${file}: decoded to ${pixels.length} values, the model takes ${channels}×${height}×${width}`);
      for (let c = 0; c < channels; c++) for (let p = 0; p < height * width; p++) x[i * size + c * height * width + p] = (pixels[p * channels + c]! / 255 - trained.mean) / trained.std;
    }
    net.setInput(net.inputNames[0]!, x);
    net.forward();
    const logits = await net.read(trained.logits);
    const classes = net.shapeOf(trained.logits)[1]!;
    const results = images.map((file, i) => {
      const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
      const max = Math.max(...row);
      const exp = row.map((v) => Math.exp(v - max));
      const total = exp.reduce((a, b) => a + b, 0);
      const top = exp.map((e, c) => ({ class: c, ...(trained.classNames ? { name: trained.classNames[c] } : {}), probability: e / total }))
        .sort((a, b) => b.probability - a.probability).slice(0, opts.top);
      return { image: file, top };
    });
    if (opts.json) console.log(JSON.stringify(results));
    else for (const r of results) console.log(`${r.image}: ${r.top.map((t) => `${t.name ?? `class ${t.class}`} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`);
    await trained.backend.dispose();
  });

program.command('export')
  .description("write a trained model's inference graph as ONNX (opset 13)")
  .addOption(trainedModelOption())
  .requiredOption('--out <model.onnx>', 'the ONNX file to write')
  .option('--batch <n>', 'the batch size fixed in the graph', positiveInt, 1)
  .action(async (opts: { model: string; out: string; batch: number }) => {
    const trained = await loadTrained(opts.model, opts.batch, 'host'); // only the parameters are read
    writeFileSync(opts.out, await exportOnnx(trained.net));
    console.log(`wrote ${opts.out}: inputs ${trained.net.inputNames.filter((n) => n !== 'label').join(', ')}, logits '${trained.logits}'`);
    await trained.backend.dispose();
  });

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

/** A trained net from a run folder (its best checkpoint) or a checkpoint file, built for a batch. */
/** `threads` for the wasm backend, or 'host' for the reference backend (no workers to start). */
async function loadTrained(model: string, batch: number, threads: number | 'host') {
  const path = statSync(model, { throwIfNoEntry: false })?.isDirectory() ? join(model, 'best.safetensors') : model;
  const checkpoint = readCheckpoint(path);
  const options = (checkpoint.state.options ?? {}) as { mean?: number; std?: number; classNames?: string[] };
  const backend = threads === 'host' ? new ReferenceBackend() : await WasmBackend.create({ threads });
  const net = Net.build(checkpoint.spec, { backend, batch });
  try {
    net.loadParams(Object.fromEntries(Object.entries(checkpoint.params).map(([k, t]) => [k, t.data])));
  } catch (error) {
    throw new Error(`${path} does not match its model: ${(error as Error).message}`);
  }
  const loss = net.layers.find((l) => l.spec.type === 'softmax_cross_entropy');
  const logits = loss ? net.layerInputs(loss.name)[0]! : net.outputNames[0]!;
  return { net, backend, path, logits, mean: options.mean ?? 0, std: options.std ?? 1, classNames: options.classNames };
}

try {
  await program.parseAsync();
} catch (error) {
  console.error(`alexnet: ${(error as Error).message}`);
  process.exitCode = 1; // not process.exit(): a piped stderr must be flushed first
}
