#!/usr/bin/env node
/** The `alexnet` command line. */
import { openInBrowser, serveApp } from '../app/serve.js';
import { availableParallelism, constants as osConstants } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReferenceBackend } from '../backend/reference/backend.js';
import type { Backend } from '../backend/backend.js';
import { BACKENDS, type BackendChoice, createBackend } from '../backend/choose.js';
import { bench, benchLoader, formatBench } from '../bench/bench.js';
import { imageFilesIn } from '../data/images.js';
import type { BatchSource } from '../data/batches.js';
import { describeDataset, listPhotos } from '../data/photos.js';
import { parsePreprocess, PRESETS } from '../data/preprocess.js';
import { prepareStore } from '../data/store.js';
import { readFileBytes, writeFileAtomic } from '../io/files.js';
import { parseNpy, serializeNpy } from '../io/npy.js';
import { type Classified, classifyImages, type Unreadable } from '../models/classify.js';
import { EXPORT_FORMATS, type ExportFormat, exportModel } from '../models/export.js';
import { models } from '../models/index.js';
import { MODEL_KINDS, openModel, type OpenedModel, readModel, type ReadOptions } from '../models/open.js';
import { initializers } from '../net/init.js';
import { firstConvolution } from '../net/roles.js';
import { logitsInBatches } from '../net/inference.js';
import { formatSummary, type Net, planNet, summarize } from '../net/net.js';
import { modelNeighbours } from '../report/neighbours.js';
import { colourShare, filterGridPng, writeRunPlots } from '../report/plots.js';
import { reproduce, type ReproduceOptions } from '../reproduce/reproduction.js';
import { type Claim, CLAIMS } from '../reproduce/reproduce.js';
import { sizeOf } from '../tensor.js';
import { evaluate, Interrupted } from '../train/evaluate.js';
import { formatNumber, recipes } from '../train/recipes.js';
import { planTraining, runToResume, type TrainRequest } from '../train/request.js';
import { RUN_FILES } from '../train/run-folder.js';
import { checkFiniteLoss, holdsPhotos, scoreModel, scoringBatch } from '../train/score.js';
import { CHANGEABLE } from '../train/settings.js';
import { initialModel, inputSide } from '../train/setup.js';
import { train } from '../train/trainer.js';
import { launchedJob } from '../config.js';
import { loadMpi, type Mpi } from '../backend/native/mpi.js';
import { DataParallel, shareJson } from '../train/distributed.js';

/** A numeric option's parser: the value must be a number within a range, stated in the error. */
function numberIn(min: number, max: number, { integer = false, openMin = false, openMax = false } = {}) {
  const range = integer
    ? max === Infinity
      ? `an integer ≥ ${min}`
      : `an integer from ${min} to ${max}`
    : `a number in ${openMin ? '(' : '['}${min}, ${max === Infinity ? '∞' : max}${openMax || max === Infinity ? ')' : ']'}`;
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    const inside = (openMin ? n > min : n >= min) && (openMax ? n < max : n <= max);
    if (!Number.isFinite(n) || !inside || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`must be ${range}`);
    return n;
  };
}
const positiveInt = numberIn(1, 1_000_000, { integer: true });
const batchSize = numberIn(1, 65_536, { integer: true });
const threadCount = numberIn(1, 256, { integer: true });

/** Options several commands share (a fresh Option per command: commander keeps state on them). */
const trainedModelOption = () =>
  new Option('--model <model>', `${MODEL_KINDS}; a run folder uses its best.safetensors`).makeOptionMandatory();
const archOption = () =>
  new Option('--arch <name|spec.json>', "a state_dict's architecture, when its parameter names do not tell (a zoo name or a JSON spec)");
const preprocessOption = () =>
  new Option(
    '--preprocess <preset|json>',
    `how photos become inputs, when the model does not record it: ${Object.keys(PRESETS).join(', ')}, or {"channels","mean","std","resize"}`,
  ).argParser(parsePreprocess);
const backendOption = () =>
  new Option(
    '--backend <name>',
    'native (BLAS GEMMs; auto picks it when OpenBLAS is found), wasm, webgpu (the GPU, through Dawn), or reference (the slow oracle)',
  )
    .choices(BACKENDS)
    .default('auto');
const threadsOption = () =>
  new Option('--threads <n>', 'threads (default: available cores)').argParser(threadCount).default(availableParallelism());

/** The package's version; a copy of dist/ without the package.json beside it still runs. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown (no package.json beside dist/)';
  }
}

const version = packageVersion();
const program = new Command('alexnet')
  .description('AlexNet in TypeScript: train, evaluate, run and benchmark AlexNet-class networks')
  .version(version)
  .showHelpAfterError('(run with --help for usage)');

program
  .command('info')
  .description('layers, output shapes, parameters and multiply-adds of a model')
  .requiredOption('--model <model>', `zoo models: ${Object.keys(models).join(', ')}; or ${MODEL_KINDS.replace(/^a zoo name, /, '')}`)
  .addOption(archOption())
  .option('--batch <n>', 'batch size for the shapes', batchSize, 1)
  .option('--json', 'print one JSON object')
  .action((opts: { model: string; arch?: string; batch: number; json?: boolean }) => {
    const model = readModel(opts.model, { arch: opts.arch });
    const spec = model.spec;
    const rows = summarize(planNet(spec, opts.batch));
    if (opts.json) {
      console.log(
        JSON.stringify({
          model: spec.name ?? opts.model,
          kind: model.kind,
          inputs: spec.inputs,
          ...(model.preprocess ? { preprocess: model.preprocess } : {}),
          layers: rows,
          params: rows.reduce((n, r) => n + r.params, 0),
          macsPerExample: rows.reduce((n, r) => n + r.macsPerExample, 0),
        }),
      );
    } else {
      console.log(
        `${spec.name ?? opts.model}: inputs ${Object.entries(spec.inputs)
          .map(([k, v]) => `${k} [${v.join(', ')}]`)
          .join(', ')}`,
      );
      console.log(formatSummary(rows));
      if (model.preprocess) console.log(`preprocessing: ${JSON.stringify(model.preprocess)}`);
    }
  });

program
  .command('bench')
  .description('time inference or a training step (forward, backward, SGD update)')
  .requiredOption('--model <model>', MODEL_KINDS)
  .addOption(archOption())
  .addOption(new Option('--mode <mode>', 'what to time').choices(['train', 'infer']).default('infer'))
  .option('--batch <n>', 'batch size', batchSize, 64)
  .addOption(threadsOption())
  .option('--steps <n>', 'timed steps after one warm-up', positiveInt, 3)
  .addOption(backendOption())
  .option('--data <store>', "also time a prepared store's loader alone (augmented batches at the model's input size)")
  .option('--json', 'print one JSON object')
  .action(
    async (opts: {
      model: string;
      arch?: string;
      mode: 'train' | 'infer';
      batch: number;
      threads: number;
      steps: number;
      backend: BackendChoice;
      data?: string;
      json?: boolean;
    }) => {
      const spec = readModel(opts.model, { arch: opts.arch }).spec;
      const loader = opts.data ? await benchLoader(opts.data, { batch: opts.batch, inputSize: inputSide(spec) }) : undefined;
      const result = await bench({
        spec,
        mode: opts.mode,
        batch: opts.batch,
        threads: opts.threads,
        steps: opts.steps,
        backend: opts.backend,
      });
      if (opts.json) console.log(JSON.stringify(loader ? { ...result, loader } : result));
      else {
        console.log(formatBench(result));
        if (loader)
          console.log(
            `loader (${opts.data}, 1 thread): ${loader.imagesPerSecond.toFixed(0)} images/s, ` +
              `${loader.msPerBatch.toFixed(1)} ms per batch of ${loader.batch}, ${(loader.imagesPerSecond / result.imagesPerSecond).toFixed(1)}× ` +
              `what the ${opts.mode === 'train' ? 'training step' : 'inference'} consumes`,
          );
      }
    },
  );

/** A progress line with images/s and ETA, redrawn in place on a terminal, silent otherwise. */
function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}\x1b[K`);
}

program
  .command('train')
  .description(
    'train a model on images: a folder of MNIST/Fashion-MNIST IDX files or CIFAR-10/100 batches, a store made by prepare, or a folder of photos',
  )
  .requiredOption('--data <dir>', 'dataset folder')
  .requiredOption('--out <dir>', 'run folder: checkpoints and metrics.jsonl (never overwritten without --resume or --force)')
  .option(
    '--model <name|spec.json>',
    "default: the --init-from model, else the paper's net for photos, the scaled AlexNet for 28×28 and 32×32 images",
  )
  .addOption(
    new Option(
      '--recipe <name>',
      `the settings not given here (each zoo net has its own, --init-from takes fine-tune; the learning rate is ` +
        `scaled to the batch): ${Object.entries(recipes)
          .map(([n, r]) => {
            const nets = Object.entries(models).filter(([, m]) => m.recipe === n);
            return `${n} (${r.describe}${nets.length ? `; ${nets.map(([name]) => name).join(', ')}` : ''})`;
          })
          .join(', ')}`,
    ).choices(Object.keys(recipes)),
  )
  .option(
    '--init-from <model>',
    `fine-tune: start from this model's weights (${MODEL_KINDS}); its classifier is resized to the data's classes`,
  )
  .addOption(archOption())
  .option('--freeze [layers]', 'with --init-from: train only the classifier, or leave these comma-separated layers as they are', (v) =>
    v.split(',').map((n) => n.trim()),
  )
  .option('--epochs <n>', "epochs (the recipe's: scaled 10, ~11 min for Fashion-MNIST on 2 cores)", numberIn(1, 100_000, { integer: true }))
  .option('--batch <n>', "batch size (the recipe's, at most a quarter of the training images)", batchSize)
  .option('--lr <x>', "learning rate ε (the recipe's, scaled to the batch)", numberIn(0, 1000, { openMin: true }))
  .option('--momentum <x>', 'momentum', numberIn(0, 1, { openMax: true }))
  .option('--weight-decay <x>', 'weight decay', numberIn(0, 1, { openMax: true }))
  .option(
    '--schedule <s>',
    'plateau[:patience[:maxDrops]] (the paper) | steps:E1,E2 (epochs or % of --epochs) | linear[:warmupEpochs] | constant',
  )
  .option(
    '--val <n>',
    "training images held out for validation (default: a store's or folder's val split, else 10 % of the training images, at most 5,000)",
    positiveInt,
  )
  .addOption(new Option('--init <scheme>', 'parameter initialisation').choices(Object.keys(initializers)))
  .option('--crop-pad <n>', 'random crops from images padded by n pixels (0: none)', numberIn(0, 1024, { integer: true }))
  .option('--no-flip', 'no random horizontal flips')
  .option('--loaders <n>', 'on a store: threads assembling batches ahead of training (0: none)', numberIn(0, 64, { integer: true }), 1)
  .option('--pca <sigma>', "on a store: the PCA colour noise's α deviation (the paper's 0.1; 0: none)", numberIn(0, 10))
  .addOption(threadsOption())
  .addOption(backendOption())
  .option('--seed <n>', 'random seed', numberIn(0, 2 ** 32 - 1, { integer: true }), 0)
  .option(
    '--classes <n>',
    "the number of classes, when the dataset's files do not say (labels are checked against it)",
    numberIn(2, 65_536, { integer: true }),
  )
  .option(
    '--class-names <file|list>',
    "names for predict: a file (one per line) or a comma-separated list (default: the dataset folder's own)",
  )
  .option('--resume', 'continue the run in --out from its last checkpoint, with its settings')
  .option('--override <settings>', `with --resume: settings that may differ from the run's (${CHANGEABLE.join(', ')})`, (v) =>
    v.split(',').map((n) => n.trim()),
  )
  .option('--force', 'start over in an --out that holds a run, deleting it')
  .option('--distributed', "under an MPI launcher (mpirun, srun): data-parallel over its processes; --batch is the whole step's batch")
  .action(async (opts: TrainRequest & { backend: BackendChoice; threads: number; distributed?: boolean }, command: Command) => {
    const mpi = opts.distributed ? openMpi() : undefined;
    const job = launchedJob();
    if (!mpi && job.size > 1)
      throw new Error(
        `started by an MPI launcher as one of ${job.size} processes, without --distributed: ` +
          'each would train alone into the same --out; add --distributed to train as one run over them',
      );
    const leads = !mpi || mpi.rank === 0;
    const say = leads ? console.log : () => {};
    const show = leads ? progress : () => {};
    if (mpi && command.getOptionValueSource('threads') !== 'cli') opts.threads = Math.max(1, Math.floor(opts.threads / job.local));
    const { spec, data, settings, options } = await planTraining(opts, {
      given: (key) => command.getOptionValueSource(key) === 'cli',
      onPhotos: (photos) => say(`${describeDataset(photos)}: decoding in memory`),
      onProgress: (p) => show(`${p.done}/${p.total} photos decoded, ${p.imagesPerSecond.toFixed(0)} images/s`),
      ...(mpi
        ? {
            readRun: (out: string) => shareJson(mpi, leads ? runToResume(out) : undefined),
            // the leader reads the weights and gives them to the others at the start; they take its net
            readInitial: (source: string, arch?: string) => {
              const model = leads ? initialModel(source, arch) : undefined;
              const shared = shareJson(
                mpi,
                model && { spec: model.spec, normalisation: model.normalisation, preprocess: model.preprocess },
              );
              return model ?? shared;
            },
          }
        : {}),
    });
    show('');
    const { batch, epochs, flip } = settings.settings;
    if (!opts.resume) say(settings.described);
    const backend = await openBackend(opts.backend, opts.threads);
    const stop = stopOnSignals({ quiet: !leads, distributed: mpi !== undefined });
    const start = performance.now();
    try {
      const { net, interrupted } = await train({
        ...options,
        backend,
        ...(mpi ? { collective: mpi } : {}),
        interrupted: () => stop.signal !== undefined,
        onStart: () =>
          say(
            `training ${spec.name ?? opts.model ?? 'the model'} on ${data.train.count} images (validation: ${data.validationFrom}) ` +
              `for ${epochs} epochs, batch ${batch}${mpi ? ` over ${mpi.size} processes` : ''}, into ${opts.out}`,
          ),
        onResume: (r) =>
          say(
            `resuming at epoch ${r.epoch + 1}, step ${r.step}` +
              r.changes.map((c) => `; ${c.setting} ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`).join(''),
          ),
        onProgress: (p) =>
          show(
            `epoch ${p.epoch} ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}  ${grouped(p.imagesPerSecond)} images/s  ` +
              `ETA ${p.imagesPerSecond > 0 ? (((p.batches - p.batch) * batch) / p.imagesPerSecond).toFixed(0) : '?'} s`,
          ),
        onEpoch: (m) => {
          show('');
          say(
            `epoch ${m.epoch}: loss ${m.loss.toFixed(4)}, train error ${(100 * m.trainError).toFixed(2)}%, ` +
              `validation loss ${m.valLoss.toFixed(4)}, top-1 error ${(100 * m.valTop1Error).toFixed(2)}%, ` +
              `lr ${formatNumber(m.lr)}, ${grouped(m.imagesPerSecond)} images/s`,
          );
        },
      });
      if (interrupted) {
        show('');
        say(
          `interrupted: saved ${join(opts.out, RUN_FILES.last)}; continue with: ` +
            `${mpi ? `mpirun -np ${mpi.size} ` : ''}alexnet train --data ${opts.data} --out ${opts.out} --resume${mpi ? ' --distributed' : ''}`,
        );
      } else {
        const interruptible = () => !mpi && stop.signal !== undefined; // the ranks score their shares to the end
        await finishRun(net, { out: opts.out, data: opts.data, flip, mpi }, data.test, interruptible, start);
      }
    } finally {
      stop.release();
      await data.close();
      await backend.dispose();
    }
    mpi?.finalize(); // only after a run that ended well: a failed rank exits without it, and the launcher stops the others
    if (stop.signal) process.exitCode = 128 + osConstants.signals[stop.signal];
  });

/** MPI for `--distributed`, or one line saying why not. */
function openMpi(): Mpi {
  const mpi = loadMpi();
  if (typeof mpi === 'string') throw new Error(`--distributed: ${mpi}`);
  return mpi;
}

/** Curves, filters and the test score of a finished run (data-parallel: the leader writes and prints;
 * every rank scores its share of the test images). */
async function finishRun(
  net: Net,
  opts: { out: string; data: string; flip: boolean; mpi?: Mpi | undefined },
  test: BatchSource,
  interrupted: () => boolean,
  start: number,
) {
  const shard = opts.mpi && new DataParallel(opts.mpi, net);
  if (shard && !shard.leads) {
    await evaluate(net, test, { mirror: opts.flip, shard });
    return;
  }
  await writeRunPlots(opts.out, net);
  let evaluated;
  try {
    evaluated = await evaluate(net, test, { mirror: opts.flip, interrupted, ...(shard ? { shard } : {}) });
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error;
    console.log(`interrupted during the test evaluation; the run is complete: alexnet eval --model ${opts.out} --data ${opts.data}`);
    return;
  }
  const result = evaluated.singleView ?? evaluated;
  checkFiniteLoss(result, test.source);
  const mirrored = opts.flip ? ` (${(100 * evaluated.top1).toFixed(2)}% averaged with mirror images)` : '';
  console.log(
    `test accuracy ${(100 * result.top1).toFixed(2)}%${mirrored} (top-5 ${(100 * result.top5).toFixed(2)}%), ` +
      `loss ${result.loss.toFixed(4)} on ${result.count} images, ${((performance.now() - start) / 1000).toFixed(0)} s`,
  );
}

/** Throughput for people: 12,345. */
function grouped(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

/** Ctrl-C (SIGINT) and SIGTERM ask the run to stop after the current step and save; repeated
 * signals change nothing, so a run is never killed half-way through writing its checkpoint. Under
 * MPI, SIGUSR1 too: Open MPI's mpirun passes it on to every rank, where Ctrl-C makes it send
 * SIGTERM and SIGKILL a second later (and stop relaying the ranks' output). */
function stopOnSignals({ quiet = false, distributed = false } = {}) {
  const state: { signal?: NodeJS.Signals; release: () => void } = { release: () => {} };
  const handler = (signal: NodeJS.Signals) => {
    if (state.signal === undefined && !quiet)
      console.error(`\n${signal}: stopping after this step and saving the run (this takes a moment)`);
    state.signal ??= signal;
  };
  const signals: NodeJS.Signals[] = distributed ? ['SIGINT', 'SIGTERM', 'SIGUSR1'] : ['SIGINT', 'SIGTERM'];
  for (const signal of signals) process.on(signal, handler);
  state.release = () => {
    for (const signal of signals) process.off(signal, handler);
  };
  return state;
}

program
  .command('prepare')
  .description(
    "decode a folder of photos once into a store that training and evaluation read (the paper's 256×256 images, mean image, PCA)",
  )
  .requiredOption(
    '--data <dir|list.txt>',
    'class folders (train/<class>/*.jpg, val/…), ILSVRC validation layout, or "path label" list files',
  )
  .requiredOption('--out <store>', 'the store folder (an interrupted prepare into it resumes)')
  .option(
    '--size <n>',
    'the side of the stored images (the shorter side is rescaled to it, the centre cropped)',
    numberIn(8, 4096, { integer: true }),
    256,
  )
  .option('--jobs <n>', 'images decoded at once (default: available cores)', threadCount, availableParallelism())
  .option('--shard <n>', 'images per shard file, the unit a resumed prepare restarts from', positiveInt, 256)
  .action(async (opts: { data: string; out: string; size: number; jobs: number; shard: number }) => {
    const dataset = listPhotos(opts.data);
    console.log(describeDataset(dataset));
    const index = await prepareStore(opts.data, opts.out, {
      dataset,
      size: opts.size,
      jobs: opts.jobs,
      shardImages: opts.shard,
      onProgress: (p) =>
        progress(
          `${p.done}/${p.total} images, ${p.skipped} skipped, ${p.imagesPerSecond.toFixed(0)} images/s, ` +
            `ETA ${p.imagesPerSecond > 0 ? ((p.total - p.done) / p.imagesPerSecond).toFixed(0) : '?'} s`,
        ),
    });
    progress('');
    const splits = Object.entries(index.splits).map(([name, s]) => `${name} ${s.count}`);
    console.log(
      `wrote ${opts.out}: ${splits.join(', ')} images of ${index.size}×${index.size}, ${index.classIds.length} classes; ` +
        `${index.skipped} files skipped${index.skipped ? ` (listed in ${join(opts.out, 'skipped.txt')})` : ''}`,
    );
  });

/** The options of commands that run a model. */
interface ModelCliOptions extends ReadOptions {
  model: string;
  threads: number;
  backend: BackendChoice;
}

/** `--model` with what opening it may need: `--arch`, `--preprocess`, the backend and threads. */
function modelCommand(name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .addOption(trainedModelOption())
    .addOption(archOption())
    .addOption(preprocessOption())
    .addOption(threadsOption())
    .addOption(backendOption());
}

modelCommand('eval', "top-1/top-5 accuracy and loss of a model on a dataset: its test split, or a prepared store's val split")
  .requiredOption('--data <dir>', 'a dataset folder (IDX, CIFAR) or a store made by alexnet prepare')
  .option('--batch <n>', 'images per batch (default: 100; 16 on a store)', batchSize)
  .option('--mirror', "average each image's prediction with its mirror image's (the paper's test-time reflections)")
  .addOption(
    new Option('--crops <crops>', "on a store: the centre crop, or the paper's ten patches (corners, centre, reflected)")
      .choices(['center', 'ten'])
      .default('center'),
  )
  .option('--json', 'print {"top1", "top5", "loss", "count"}')
  .action(async (opts: ModelCliOptions & { data: string; batch?: number; mirror?: boolean; crops: 'center' | 'ten'; json?: boolean }) => {
    await withModel(opts, scoringBatch(opts.data, opts), async (model) => {
      const result = await scoreModel(model, opts.data, {
        crops: opts.crops,
        mirror: opts.mirror,
        onProgress: (done, total) => progress(`${done}/${total} images`),
      }).finally(() => progress(''));
      console.log(
        opts.json
          ? JSON.stringify(result)
          : `top-1 accuracy ${(100 * result.top1).toFixed(2)}%, top-5 ${(100 * result.top5).toFixed(2)}%, ` +
              `loss ${result.loss.toFixed(4)} on ${result.count} images`,
      );
    });
  });

modelCommand('run', 'logits for a raw float32 NCHW tensor (.npy in, .npy out): batch jobs and parity checks')
  .requiredOption('--input <x.npy>', 'float32 (or float64) array [N, C, H, W], already normalised')
  .requiredOption('--output <y.npy>', 'where the logits [N, classes] go')
  .option('--batch <n>', 'examples per forward pass', batchSize, 64)
  .action(async (opts: ModelCliOptions & { input: string; output: string; batch: number }) => {
    const input = parseNpy(readFileBytes(opts.input, 'input'), opts.input);
    const count = input.shape[0]!;
    if (!(count >= 1)) throw new Error(`${opts.input}: shape [${input.shape.join(', ')}] holds no examples`);
    await withModel(opts, Math.min(opts.batch, count), async ({ net, data, logits }) => {
      const expected = net.shapeOf(data).slice(1);
      if (input.shape.slice(1).join() !== expected.join() || input.shape.length !== expected.length + 1)
        throw new Error(`${opts.input}: shape [${input.shape.join(', ')}] does not match the model's input [N, ${expected.join(', ')}]`);
      const [example, row] = [sizeOf(expected), sizeOf(net.shapeOf(logits).slice(1))];
      const out = new Float32Array(count * row);
      await logitsInBatches(
        net,
        count,
        (from, to, x) => x.set(input.data.subarray(from * example, to * example)),
        (from, to, z) => out.set(z.subarray(0, (to - from) * row), from * row),
        opts.input,
      );
      writeFileAtomic(opts.output, serializeNpy([count, ...net.shapeOf(logits).slice(1)], out));
    });
  });

modelCommand('predict', 'top-K classes of image files, preprocessed as the model expects (decoded with sharp)')
  .argument('<images...>', 'image files (PNG, JPEG, WebP, …), or folders of them')
  .option('--top <k>', 'classes to list', positiveInt, 3)
  .option('--json', 'print a JSON array, one entry per image')
  .option('--batch <n>', 'images decoded and run at a time', batchSize, 64)
  .action(async (paths: string[], opts: ModelCliOptions & { top: number; json?: boolean; batch: number }) => {
    const images = imageFilesIn(paths);
    if (images.length === 0) throw new Error(`no image files in ${paths.join(', ')}`);
    await withModel(opts, Math.min(opts.batch, images.length), async (model) => {
      const results: (Classified | Unreadable)[] = [];
      // Printed as each batch is done (a long list shows progress); --json prints one array at the end. An image that does
      // not decode gets its line on stderr and the exit status 1; the others are still scored.
      await classifyImages(model, images, opts.top, (result) => {
        if ('error' in result) {
          console.error(`alexnet: ${result.error}`);
          process.exitCode = 1;
        }
        if (opts.json) results.push(result);
        else if ('top' in result)
          console.log(
            `${result.image}: ${result.top.map((t) => `${t.name ?? `class ${t.class}`} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`,
          );
      });
      if (opts.json) console.log(JSON.stringify(results));
    });
  });

program
  .command('export')
  .description("write a model's weights for other tools: an ONNX inference graph (opset 13), or a PyTorch state_dict")
  .addOption(trainedModelOption())
  .addOption(archOption())
  .addOption(preprocessOption())
  .requiredOption('--out <file>', 'the file to write')
  .addOption(
    new Option('--format <format>', "onnx, or safetensors: the parameters under the net's names (torchvision's, for alexnet-torchvision)")
      .choices(EXPORT_FORMATS)
      .default('onnx'),
  )
  .option('--batch <n>', 'the batch size fixed in the ONNX graph', batchSize, 1)
  .action(async (opts: ReadOptions & { model: string; out: string; format: ExportFormat; batch: number }) => {
    await withModel({ ...opts, threads: 0, backend: 'reference' }, opts.batch, async (model) => {
      writeFileAtomic(opts.out, await exportModel(model, opts.format));
      const { net, data, logits } = model;
      const names = net.params.map((p) => p.name);
      console.log(
        opts.format === 'onnx'
          ? `wrote ${opts.out}: inputs ${data}, logits '${logits}'`
          : `wrote ${opts.out}: ${names.length} tensors (${names.slice(0, 2).join(', ')}, …)`,
      );
    });
  });

program
  .command('filters')
  .description("draw a model's first-layer kernels as a grid, one block per column (the paper's Figure 3)")
  .addOption(trainedModelOption())
  .addOption(archOption())
  .requiredOption('--out <file.png>', 'the PNG to write')
  .option('--scale <n>', 'pixels per kernel pixel', numberIn(1, 64, { integer: true }), 12)
  .action(async (opts: { model: string; arch?: string; out: string; scale: number }) => {
    const model = readModel(opts.model, { arch: opts.arch });
    const first = firstConvolution(model.spec);
    if (!first) throw new Error(`${opts.model} has no convolution`);
    const weight = model.params?.[`${first.name}.weight`];
    if (!weight) throw new Error(`${opts.model} holds no weights for ${first.name} (a net without trained weights has no filters to draw)`);
    writeFileAtomic(opts.out, await filterGridPng(weight.data, weight.shape, { columns: first.columns, scale: opts.scale }));
    const share = weight.shape[1] === 3 ? colourShare(weight.data, weight.shape, first.columns) : undefined;
    console.log(
      `wrote ${opts.out}: ${first.name}'s ${weight.shape[0]} kernels of ${weight.shape.slice(1).join('×')}, ` +
        `${first.columns} column${first.columns === 1 ? '' : 's'}` +
        (share ? `; colour share of each column's kernels: ${share.map((x) => `${(100 * x).toFixed(1)}%`).join(', ')}` : ''),
    );
  });

program
  .command('neighbours')
  .description("test images, the model's top classes, and the training images nearest in its last hidden layer (the paper's Figure 4)")
  .addOption(trainedModelOption())
  .addOption(archOption())
  .addOption(preprocessOption())
  .requiredOption('--data <dir>', 'a dataset folder (IDX or CIFAR), a photo store or a folder of photos: its training images are searched')
  .requiredOption('--images <image...>', "the query images: indices of a dataset's test images, or image files")
  .requiredOption('--out <file.png>', 'the PNG to write')
  .option('--layer <blob>', 'the blob compared (default: the input of the classifier)')
  .option('--count <n>', 'neighbours per image', numberIn(1, 20, { integer: true }), 5)
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(async (opts: ModelCliOptions & { data: string; images: string[]; out: string; layer?: string; count: number }) => {
    // indices of a dataset's test images, or image files
    const queries = opts.images.map((text) => (/^\d+$/.test(text) ? Number(text) : text));
    await withModel(opts, holdsPhotos(opts.data) ? 16 : 100, async (model) => {
      const { png, search } = await modelNeighbours(model, opts.data, queries, {
        count: opts.count,
        ...(opts.layer ? { layer: opts.layer } : {}),
      });
      writeFileAtomic(opts.out, png);
      console.log(`wrote ${opts.out}: ${queries.length} images and their ${opts.count} nearest training images in ${search.layer}`);
    });
  });

program
  .command('reproduce')
  .description("the paper's claims as training runs on Fashion-MNIST (and CIFAR-10): REPORT.md, its figures and results.json")
  .requiredOption('--out <dir>', 'the reproduction folder (run again to continue an interrupted one)')
  .option('--data <dir>', "Fashion-MNIST's IDX files", '/usr/share/datasets/fashion-mnist')
  .option('--cifar <dir>', "CIFAR-10's binary files: every experiment also on colour images")
  .option(
    '--photos <store|dir>',
    "a photo store or folder with train and val splits: crops, flips, colour noise, ten patches and the columns' colours on the paper's net",
  )
  .option('--quick', 'a small version of every experiment (minutes)')
  .option('--only <claims>', `a comma-separated list of: ${CLAIMS.join(', ')}`, (value: string) => parseClaims(value))
  .option('--seeds <n>', 'seeds per arm (default 3; 1 with --quick)', numberIn(1, 20, { integer: true }))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(
    async (
      opts: Pick<ReproduceOptions, 'out' | 'data' | 'cifar' | 'photos' | 'quick' | 'only' | 'seeds'> & {
        backend: BackendChoice;
        threads: number;
      },
    ) => {
      for (const [flag, dir] of [
        ['--data', opts.data],
        ['--cifar', opts.cifar],
        ['--photos', opts.photos],
      ] as const)
        if (dir !== undefined && !existsSync(dir))
          throw new Error(
            `${flag} ${dir}: no such folder${flag === '--data' ? " (Debian's dataset-fashion-mnist installs it there)" : ''}`,
          );
      const command = ['alexnet reproduce', ...process.argv.slice(3)].join(' ');
      const backend = await openBackend(opts.backend, opts.threads);
      const stop = stopOnSignals();
      try {
        const result = await reproduce({
          out: opts.out,
          data: opts.data,
          ...(opts.cifar ? { cifar: opts.cifar } : {}),
          ...(opts.photos ? { photos: opts.photos } : {}),
          ...(opts.quick ? { quick: true } : {}),
          ...(opts.only ? { only: opts.only } : {}),
          ...(opts.seeds ? { seeds: opts.seeds } : {}),
          backend,
          command,
          interrupted: () => stop.signal !== undefined,
          onRun: (r) => {
            progress('');
            console.log(`[${r.index}/${r.total}] ${r.dataset} ${r.arm} seed ${r.seed}${r.finished ? ': done before' : ''}`);
          },
          onProgress: (p) =>
            progress(`  epoch ${p.epoch} ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}  ${grouped(p.imagesPerSecond)} images/s`),
        });
        progress('');
        if (result.interrupted) console.log(`interrupted: the runs so far are kept; continue with: ${command}`);
        else console.log(`wrote ${join(opts.out, 'REPORT.md')}, its figures and results.json`);
      } finally {
        stop.release();
        await backend.dispose();
      }
      if (stop.signal) process.exitCode = 128 + osConstants.signals[stop.signal];
    },
  );

program
  .command('serve')
  .description('the browser app: train, watch and use AlexNet in a web page (WebGPU, or wasm on threads)')
  .option('--port <n>', 'the port to listen on (0: any free one)', numberIn(0, 65_535, { integer: true }), 8080)
  .option('--host <address>', 'the address to listen on (0.0.0.0: every interface of this machine)', '127.0.0.1')
  .option('--open', "open the page in the desktop's browser")
  .action(async (opts: { port: number; host: string; open?: boolean }) => {
    const { url } = await serveApp({ port: opts.port, host: opts.host });
    console.log(`serving the app at ${url} (Ctrl-C stops)`);
    if (opts.open) {
      const failed = await openInBrowser(url);
      if (failed) console.error(`alexnet: ${failed}; open ${url} yourself`);
    }
  });

function parseClaims(value: string): Claim[] {
  const names = value.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(CLAIMS as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0)
    throw new InvalidArgumentError(`unknown claim ${unknown.join(', ')} (known: ${CLAIMS.join(', ')})`);
  return names as Claim[];
}

/** A backend of the chosen kind; `auto` says so on stderr when it falls back to wasm. */
async function openBackend(choice: BackendChoice, threads: number): Promise<Backend> {
  const { backend, fallback } = await createBackend(choice, threads);
  if (fallback) console.error(`alexnet: ${fallback}`);
  return backend;
}

/** Runs `use` on the model built for a batch on the chosen backend (the reference backend, which
 * starts no workers, for `threads: 0`), and stops the backend's threads after. */
async function withModel(opts: ModelCliOptions, batch: number, use: (model: OpenedModel) => Promise<void>) {
  const backend = opts.threads === 0 ? new ReferenceBackend() : await openBackend(opts.backend, opts.threads);
  try {
    await use(openModel(opts.model, { batch, backend, arch: opts.arch, preprocess: opts.preprocess, inference: true }));
  } finally {
    await backend.dispose();
  }
}

try {
  await program.parseAsync();
} catch (error) {
  const job = launchedJob(); // the processes of one job share a terminal: say which failed
  console.error(`alexnet${job.size > 1 ? ` (rank ${job.rank} of ${job.size})` : ''}: ${(error as Error).message}`);
  process.exitCode = 1; // not process.exit(): a piped stderr must be flushed first
}
