/**
 * The page's engine, run in a Worker so the page never freezes: it holds the backend, the model,
 * the data and the training run, and answers the page's requests (protocol.ts). Training is the
 * library's own `train`, its checkpoints kept in memory (MemoryRun): pausing saves the run as the
 * CLI would, resuming continues it exactly, and "save" hands over the bytes of the CLI's format.
 */
import type { Backend } from '../backend/backend.js';
import { setWasmPaths } from '../backend/wasm/platform.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import { adapterDescription, requestDevice, WebGpuBackend } from '../backend/webgpu/backend.js';
import { checkedSets, FASHION_MNIST, type ImageSet, idxSet } from '../data/dataset.js';
import { parseIdx } from '../data/idx.js';
import { PHOTO_EXTENSIONS } from '../data/photos.js';
import { normaliseImage, type Preprocess, uniformNormalisation, uniformPreprocess } from '../data/preprocess.js';
import { imageSetBatches } from '../data/batches.js';
import { type ModelFile, readModelBytes } from '../models/open.js';
import { models } from '../models/index.js';
import { decodeCheckpoint, encodeCheckpoint } from '../net/checkpoint.js';
import { logitsInBatches, softmaxRows } from '../net/inference.js';
import { Net, paramShapes, planNet, summarize } from '../net/net.js';
import { classifierLayer, firstConvolution, netRoles, replaceClasses, specClasses, withLoss } from '../net/roles.js';
import type { NetSpec } from '../net/spec.js';
import { formatShape } from '../tensor.js';
import { defaultHoldOut, imageSetData, type TrainingData } from '../train/data.js';
import { features, lastHiddenBlob, nearestNeighbours } from '../train/features.js';
import type { EvalResult } from '../train/evaluate.js';
import { resolveSettings } from '../train/recipes.js';
import { runOptionsOf } from '../train/run-options.js';
import { runOptionsFor } from '../train/request.js';
import { MemoryRun } from '../train/run-store.js';
import { train } from '../train/trainer.js';
import type {
  BackendInfo,
  DataInfo,
  Event,
  FeatureMaps,
  Filters,
  Miss,
  Neighbours,
  ModelInfo,
  NamedBytes,
  Prediction,
  Reply,
  Request,
  RunState,
} from './protocol.js';

type Tensors = NonNullable<ModelFile['params']>;

const scope = globalThis as unknown as {
  postMessage(message: Reply | Event, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<Request & { id: number }>) => void) | null;
  crossOriginIsolated?: boolean;
  navigator: { hardwareConcurrency?: number; gpu?: GPU };
};

setWasmPaths({ kernels: './wasm/', worker: './kernel-worker.js' });

let backend: Backend | undefined;
/** The model the page shows: its spec (made trainable), weights once it has them, how its inputs are made. */
let model: { source: string; kind: string; spec: NetSpec; params?: Tensors; preprocess?: Preprocess; classNames?: string[] } | undefined;
let sets: { train: ImageSet; test: ImageSet; source: string } | undefined;
/** The training run of this model on this data; its `last` checkpoint is where a paused run resumes. */
let run = new MemoryRun('the page');
let state: RunState = 'idle';
let pauseAsked = false;
/** A stopped run keeps its weights and its checkpoint; training again continues it. */
let stopAsked = false;
/** A batch-1 net for predictions, built from the weights it was made for. */
let predictor: { net: Net; params: Tensors } | undefined;

const post = (message: Reply | Event, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

function setState(next: RunState, error?: string): void {
  state = next;
  post({ event: 'state', state, ...(error ? { error } : {}) });
}

async function start(request: Extract<Request, { type: 'start' }>): Promise<BackendInfo> {
  let refused = '';
  if (request.backend !== 'wasm') {
    try {
      const gpu = await gpuAdapter(request.backend === 'webgpu');
      if (typeof gpu === 'string') refused = gpu;
      else {
        backend = await WebGpuBackend.create({ device: await requestDevice(gpu.adapter), description: gpu.description });
        return { name: 'webgpu', detail: `WebGPU on ${gpu.description}` };
      }
    } catch (error) {
      if (request.backend === 'webgpu') throw error;
      refused = `WebGPU is not usable here (${(error as Error).message}); `;
    }
  }
  const shared = scope.crossOriginIsolated === true && typeof SharedArrayBuffer !== 'undefined';
  const threads = shared ? (request.threads ?? Math.min(8, scope.navigator.hardwareConcurrency ?? 1)) : 1;
  const wasm = await WasmBackend.create({ threads, sharedMemory: shared });
  backend = wasm;
  const isolation = shared ? '' : ': the page is not cross-origin isolated (its server sends no COOP/COEP headers), so one thread';
  return { name: 'wasm', detail: `${refused}WebAssembly SIMD on ${threads} thread${threads > 1 ? 's' : ''}${isolation} (${wasm.name})` };
}

/** The browser's GPU adapter, or why the page runs without one. An adapter that is the CPU itself
 * (SwiftShader, llvmpipe: what headless browsers and machines without a GPU offer) trains the small
 * net at a few images/s where WebAssembly's threads train hundreds, so it is passed over unless asked for. */
async function gpuAdapter(asked: boolean): Promise<{ adapter: GPUAdapter; description: string } | string> {
  const gpu = scope.navigator.gpu;
  if (!gpu) return 'this browser has no WebGPU; ';
  const adapter = await gpu.requestAdapter();
  if (!adapter) return 'WebGPU offers no adapter; ';
  const description = adapterDescription(adapter);
  const software =
    (adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(description);
  if (software && !asked)
    return `the WebGPU adapter (${description}) runs on the CPU, slower than WebAssembly (?backend=webgpu takes it); `;
  return { adapter, description };
}

function needBackend(): Backend {
  if (!backend) throw new Error('the engine has not started');
  return backend;
}

function open(request: Extract<Request, { type: 'open' }>): ModelInfo {
  if (state === 'training') throw new Error('a run is training: pause or stop it before opening another model');
  let file: ModelFile;
  if ('zoo' in request) {
    const zoo = models[request.zoo];
    if (!zoo) throw new Error(`unknown model '${request.zoo}' (known: ${Object.keys(models).join(', ')})`);
    file = { kind: 'zoo', source: request.zoo, spec: zoo.spec(), ...(zoo.preprocess ? { preprocess: zoo.preprocess } : {}) };
  } else {
    file = readModelBytes(request.file.name, new Uint8Array(request.file.bytes));
    planNet(file.spec, 1); // a spec the engine cannot build is refused here, not at the first click
  }
  const trainable = withLoss(file.spec);
  model = {
    source: file.source,
    kind: file.kind,
    spec: trainable,
    ...(file.params ? { params: file.params } : {}),
    ...(file.preprocess ? { preprocess: file.preprocess } : {}),
    ...(file.classNames ? { classNames: file.classNames } : {}),
  };
  run = new MemoryRun('the page');
  predictor?.net.dispose();
  predictor = undefined;
  const resumable = 'file' in request && hasMomentum(request.file, file);
  if (resumable) run.checkpoints.set('last', new Uint8Array(request.file.bytes));
  setState('idle');
  return modelInfo(resumable);
}

/** A checkpoint of a run (not an export of weights alone): training it continues that run. */
function hasMomentum(bytes: NamedBytes, file: ModelFile): boolean {
  if (file.kind !== 'checkpoint') return false;
  const checkpoint = decodeCheckpoint(new Uint8Array(bytes.bytes), bytes.name);
  return Object.keys(checkpoint.velocities ?? {}).length > 0 && typeof checkpoint.state.step === 'number';
}

function modelInfo(resumable: boolean): ModelInfo {
  const m = model!;
  const plan = planNet(m.spec, 1);
  const layers = summarize(plan);
  const input = Object.values(m.spec.inputs).find((shape) => shape.length === 3) ?? [];
  return {
    kind: m.kind,
    source: m.source,
    input: [...input],
    classes: specClasses(m.spec) ?? 0,
    ...(m.classNames ? { classNames: m.classNames } : {}),
    ...(m.preprocess ? { preprocess: m.preprocess } : {}),
    layers,
    parameters: layers.reduce((n, l) => n + l.params, 0),
    trained: m.params !== undefined,
    resumable,
    ...(m.params ? { filters: filtersOf(m.spec, (name) => m.params![name]?.data) } : {}),
  };
}

/** The first convolution's weights, for the page's Figure 3. */
function filtersOf(spec: NetSpec, value: (name: string) => ArrayLike<number> | undefined): Filters | undefined {
  const first = firstConvolution(spec);
  const weight = first && value(`${first.name}.weight`);
  if (!first || !weight) return undefined;
  return { weight: Float32Array.from(weight), shape: [...paramShapes(spec).get(`${first.name}.weight`)!], columns: first.columns };
}

/** The four files of an IDX dataset, as MNIST and Fashion-MNIST name them (gzipped or not). */
const IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

async function loadData(request: Extract<Request, { type: 'data' }>): Promise<DataInfo> {
  if (state === 'training') throw new Error('a run is training: pause or stop it before changing the data');
  let files: NamedBytes[];
  let source: string;
  let classNames: string[] | undefined;
  if ('url' in request) {
    const base = new URL(request.url, location.href);
    files = await Promise.all(
      IDX_FILES.map(async (file) => {
        const name = `${file}.gz`;
        const response = await fetch(new URL(name, base));
        if (!response.ok) throw new Error(`the bundled sample is missing (${name}: HTTP ${response.status}); the app was built without it`);
        return { name, bytes: await response.arrayBuffer() };
      }),
    );
    source = 'the bundled Fashion-MNIST sample';
    classNames = FASHION_MNIST;
  } else if ('photos' in request) {
    return useSets(await decodePhotos(request.photos));
  } else {
    files = request.files;
    source = 'your IDX files';
  }
  const [trainImages, trainLabels, testImages, testLabels] = IDX_FILES.map((wanted) => {
    const file = files.find((f) => f.name.replace(/\.gz$/, '').replace('.idx', '-idx') === wanted);
    if (!file) throw new Error(`IDX data is four files (${IDX_FILES.join(', ')}; each may be gzipped): ${wanted} is missing`);
    return { name: file.name, idx: parseIdx(new Uint8Array(file.bytes), file.name) };
  }) as [{ name: string; idx: ReturnType<typeof parseIdx> }, ...{ name: string; idx: ReturnType<typeof parseIdx> }[]];
  const train = idxSet(trainImages.idx, trainLabels!.idx, trainImages.name, trainLabels!.name);
  const test = idxSet(testImages!.idx, testLabels!.idx, testImages!.name, testLabels!.name);
  return useSets({ ...checkedSets(train, test, classNames ? { classNames } : {}), source });
}

function useSets(loaded: NonNullable<typeof sets>): DataInfo {
  sets = loaded;
  run = new MemoryRun('the page');
  setState('idle');
  const { train, test, source } = loaded;
  const count = train.labels.length;
  return {
    source,
    train: count - defaultHoldOut(count),
    validation: defaultHoldOut(count),
    test: test.labels.length,
    shape: [...train.shape],
    classes: train.classes,
    ...(train.classNames ? { classNames: train.classNames } : {}),
  };
}

/** A folder's photos by split and class: `class/*` (one split), or `train/class/*` and `val/class/*`.
 * Paths start with the chosen folder's own name, as a browser gives them. */
function photoLayout(photos: NamedBytes[]): { classes: string[]; splits: Record<'train' | 'val', { photo: NamedBytes; label: string }[]> } {
  const images = photos.filter((p) => PHOTO_EXTENSIONS.includes(p.name.slice(p.name.lastIndexOf('.')).toLowerCase()));
  const parts = images.map((p) => p.name.split('/').slice(1)); // without the chosen folder's name
  const split = parts.some((path) => path.length === 3 && (path[0] === 'train' || path[0] === 'val'));
  const splits: Record<'train' | 'val', { photo: NamedBytes; label: string }[]> = { train: [], val: [] };
  images.forEach((photo, i) => {
    const path = parts[i]!;
    if (split && path.length === 3 && (path[0] === 'train' || path[0] === 'val'))
      splits[path[0] as 'train' | 'val'].push({ photo, label: path[1]! });
    else if (!split && path.length === 2) splits.train.push({ photo, label: path[0]! });
  });
  const classes = [...new Set(splits.train.map((p) => p.label))].sort();
  if (classes.length < 2)
    throw new Error(
      `the folder holds ${classes.length === 0 ? 'no class folders of photos' : `one class (${classes[0]})`}: ` +
        'expected class/*.jpg, or train/class/*.jpg and val/class/*.jpg, with at least 2 classes',
    );
  const stray = splits.val.find((p) => !classes.includes(p.label));
  if (stray) throw new Error(`${stray.photo.name}: class '${stray.label}' is not among the training classes`);
  return { classes, splits };
}

/** Photos decoded (upright, centre-cropped to the model's aspect, resized by the browser) to the
 * current model's input, as in-memory sets; a photo that does not decode is named. */
async function decodePhotos(photos: NamedBytes[]): Promise<NonNullable<typeof sets>> {
  if (!model) throw new Error('open a model first: photos are decoded to its input size');
  const input = Object.values(model.spec.inputs).find((shape) => shape.length === 3);
  if (!input || (input[0] !== 1 && input[0] !== 3)) throw new Error(`${model.source} does not take grey or colour images`);
  const [channels, height, width] = input as [number, number, number];
  const { classes, splits } = photoLayout(photos);
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext('2d', { willReadFrequently: true })!;
  const decode = async (list: { photo: NamedBytes; label: string }[], source: string): Promise<ImageSet> => {
    const size = channels * width * height;
    const pixels = new Uint8Array(list.length * size);
    const labels = new Uint8Array(list.length);
    for (const [i, { photo, label }] of list.entries()) {
      let bitmap: ImageBitmap;
      try {
        bitmap = await createImageBitmap(new Blob([photo.bytes]));
      } catch {
        throw new Error(`${photo.name} is not an image this browser can decode`);
      }
      const scale = Math.max(width / bitmap.width, height / bitmap.height);
      const [w, h] = [width / scale, height / scale];
      g.drawImage(bitmap, (bitmap.width - w) / 2, (bitmap.height - h) / 2, w, h, 0, 0, width, height);
      bitmap.close();
      planarPixels(g.getImageData(0, 0, width, height).data, channels, pixels.subarray(i * size, (i + 1) * size));
      labels[i] = classes.indexOf(label);
    }
    return { pixels, labels, shape: [channels, height, width], classes: classes.length, source, classNames: classes };
  };
  const train = await decode(splits.train, 'your photos');
  const test = splits.val.length > 0 ? await decode(splits.val, 'your photos (val)') : train;
  return { train, test, source: `your photos (${photos[0]!.name.split('/')[0]}, decoded to ${width}×${height})` };
}

/** RGBA pixels as the planes of an image of `channels` (grey: ITU-R BT.709 luma, as libvips). */
function planarPixels(rgba: Uint8ClampedArray, channels: number, out: Uint8Array): void {
  const plane = rgba.length / 4;
  for (let p = 0; p < plane; p++) {
    const [r, g, b] = [rgba[4 * p]!, rgba[4 * p + 1]!, rgba[4 * p + 2]!];
    if (channels === 1) out[p] = Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
    else [out[p], out[plane + p], out[2 * plane + p]] = [r, g, b];
  }
}

/** The spec to train on the loaded data: the model's, its classifier resized for a net without weights. */
function specForData(spec: NetSpec, set: ImageSet, hasWeights: boolean): NetSpec {
  const input = Object.values(spec.inputs).find((shape) => shape.length === 3) ?? [];
  if (formatShape(input) !== formatShape(set.shape))
    throw new Error(
      `the model takes ${formatShape(input)} images and the data's are ${formatShape(set.shape)}: ` +
        `pick a model for them (alexnet-small-${set.shape[1]} for ${set.shape[1]}×${set.shape[2]} images) or other data`,
    );
  const classes = specClasses(spec);
  if (classes === set.classes) return spec;
  if (hasWeights && classifierLayer(spec) === undefined)
    throw new Error(`the model scores ${classes} classes, the data has ${set.classes}`);
  return replaceClasses(spec, set.classes);
}

async function trainModel(request: Extract<Request, { type: 'train' }>): Promise<{ state: RunState }> {
  if (!model) throw new Error('open a model first');
  if (!sets) throw new Error('load data first');
  if (state === 'training') throw new Error('the run is training already');
  const backend = needBackend();
  const m = model;
  const resumed = run.has('last') ? run.readCheckpoint('last') : undefined;
  const resuming = resumed !== undefined;
  const stored = resumed && runOptionsOf(resumed, run.describe('last'));
  const epochsDone = resumed ? (resumed.state.epoch as number) : 0;
  const recipe = stored?.recipe ?? (m.kind === 'zoo' ? models[m.source]!.recipe : m.params ? 'fine-tune' : 'scaled');
  const given = {
    epochs: epochsDone + request.epochs,
    ...(request.batch !== undefined && !resuming ? { batch: request.batch } : {}),
    ...(request.lr !== undefined && !resuming ? { lr: request.lr } : {}),
  };
  const s = resolveSettings(
    recipe,
    stored ? { ...storedSettings(stored), epochs: given.epochs } : given,
    sets.train.labels.length,
  ).settings;
  const spec = resumed ? resumed.spec : specForData(m.spec, sets.train, m.params !== undefined);
  const seed = stored?.seed ?? 0;
  const data = imageSetData(sets, { seed, cropPad: s.cropPad, flip: s.flip, pca: 0, ...trainedNormalisation(m, stored) });
  pauseAsked = false;
  setState('training');
  let lastFilters = 0;
  let currentNet: Net | undefined;
  let shown: Promise<void> = Promise.resolve();
  const epochs = s.epochs;
  try {
    const result = await train({
      ...runOptionsFor(spec, data, s, seed, recipe),
      backend,
      store: run,
      // a run fine-tuned from weights names them again when it resumes (the trainer loads the checkpoint's)
      ...(resuming
        ? stored?.initFrom
          ? { initFrom: { source: stored.initFrom } }
          : {}
        : m.params
          ? { initFrom: { source: m.source, params: m.params } }
          : {}),
      ...(resuming ? { resume: true, overrides: ['epochs'] } : {}),
      interrupted: () => pauseAsked,
      onNet: (net) => (currentNet = net),
      onProgress: (p) => {
        const steps = (epochs - p.epoch) * p.batches + (p.batches - p.batch);
        const stepsPerSecond = p.imagesPerSecond / s.batch;
        const progress = { ...p, epochs, step: (p.epoch - 1) * p.batches + p.batch, eta: stepsPerSecond > 0 ? steps / stepsPerSecond : 0 };
        post({ event: 'progress', progress });
        if (performance.now() - lastFilters > 400 && currentNet) {
          lastFilters = performance.now();
          void postFilters(currentNet);
        }
      },
      onEpoch: (metrics) => post({ event: 'epoch', metrics }),
      onValidation: (result) => (shown = postValidation(result, data)),
    });
    await shown;
    if (currentNet) await postFilters(currentNet);
    const last = run.readCheckpoint('last');
    const preprocess = uniformPreprocess(sets.train.shape[0], data.mean, data.std);
    model = { ...m, spec: last.spec, params: last.params, preprocess, ...(data.classNames ? { classNames: data.classNames } : {}) };
    predictor?.net.dispose();
    predictor = undefined;
    result.net.dispose();
    setState(result.interrupted ? (stopAsked ? 'stopped' : 'paused') : 'finished');
  } catch (error) {
    setState('idle', (error as Error).message);
    throw error;
  }
  return { state };
}

/** The inputs' normalisation a net with weights was trained with — a resumed run's, or a model's
 * own where it is one mean and deviation — so fine-tuning feeds it what it learnt on; else none
 * (the training images' statistics are taken). */
function trainedNormalisation(m: NonNullable<typeof model>, stored: ReturnType<typeof runOptionsOf> | undefined) {
  if (stored?.mean !== undefined && stored.std !== undefined) return { normalisation: { mean: stored.mean, std: stored.std } };
  if (!m.params || !m.preprocess) return {};
  try {
    return { normalisation: uniformNormalisation(m.preprocess, m.source) };
  } catch {
    return {}; // per-channel statistics (an ImageNet net's): these in-memory images take one mean and deviation
  }
}

/** The settings a stored run was trained with, as `resolveSettings` takes them. */
function storedSettings(o: ReturnType<typeof runOptionsOf>) {
  return {
    ...(o.batch !== undefined ? { batch: o.batch } : {}),
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
    ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    ...(o.schedule !== undefined ? { schedule: o.schedule } : {}),
    ...(o.init !== undefined ? { init: o.init } : {}),
    ...(o.augment ? { cropPad: o.augment.pad, flip: o.augment.flip } : {}),
  };
}

/** The validation images a page shows of the misses: the first ones. */
const MISSES_SHOWN = 24;

async function postValidation(result: EvalResult, data: TrainingData): Promise<void> {
  const shape = data.validation.shape;
  const size = shape[0] * shape[1] * shape[2];
  const x = new Float32Array(size),
    y = new Float32Array(1);
  const misses: Miss[] = [];
  for (const miss of (result.misses ?? []).slice(0, MISSES_SHOWN)) {
    await data.validation.fill(Uint32Array.of(miss.index), 0, 1, x, y);
    const pixels = Uint8Array.from(x, (v) => Math.round((v * data.std + data.mean) * 255)); // the source's (x/255 − mean)/std undone
    misses.push({ pixels, shape: [...shape], label: miss.label, predicted: miss.predicted });
  }
  post({ event: 'validation', confusion: result.confusion ?? [], misses });
}

async function postFilters(net: Net): Promise<void> {
  const first = firstConvolution(net.spec);
  const param = first && net.params.find((p) => p.name === `${first.name}.weight`);
  if (!first || !param) return;
  const weight = Float32Array.from(await param.value.read());
  post({ event: 'filters', filters: { weight, shape: [...param.shape], columns: first.columns } }, [weight.buffer]);
}

async function predict(request: Extract<Request, { type: 'predict' }>): Promise<Prediction> {
  if (!model?.params) throw new Error('the model has no weights yet: train it, or open a trained model');
  if (!model.preprocess) throw new Error(`${model.source} does not record how its images were preprocessed`);
  if (predictor?.params !== model.params) {
    predictor?.net.dispose();
    const net = Net.build(model.spec, { backend: needBackend(), batch: 1, inference: true, weights: model.params });
    predictor = { net, params: model.params };
  }
  const { net } = predictor;
  const { data, classes } = netRoles(net);
  const [channels, height, width] = net.shapeOf(data).slice(1) as [number, number, number];
  if (request.width !== width || request.height !== height)
    throw new Error(`the image is ${request.width}×${request.height}; the model takes ${width}×${height}`);
  const planar = new Uint8Array(channels * width * height);
  planarPixels(request.rgba, channels, planar);
  const probabilities = new Float64Array(classes);
  await logitsInBatches(
    net,
    1,
    (_from, _to, x) => normaliseImage(planar, channels, model!.preprocess!, x, 0),
    (_from, _to, z) => softmaxRows(z, 1, classes, probabilities),
    'the image',
  );
  const ranked = Array.from(probabilities, (probability, c) => ({
    class: c,
    ...(model!.classNames ? { name: model!.classNames[c] } : {}),
    probability,
  }));
  query = { net, hidden: await net.read(lastHiddenBlob(net)).then((v) => Float32Array.from(v)) };
  return { top: ranked.sort((a, b) => b.probability - a.probability).slice(0, request.top), maps: await featureMaps(net) };
}

/** Channels of each ReLU's maps a page shows. */
const MAPS_SHOWN = 16;

/** What each convolution (after its ReLU) makes of the image the net last ran: its first channels. */
async function featureMaps(net: Net): Promise<FeatureMaps[]> {
  const maps: FeatureMaps[] = [];
  for (const layer of net.layers) {
    const [blob] = net.layerOutputs(layer.spec.name);
    const shape = net.shapeOf(blob!);
    if (layer.spec.type !== 'relu' || shape.length !== 4) continue;
    const [, channels, height, width] = shape as [number, number, number, number];
    const shown = Math.min(channels, MAPS_SHOWN);
    const values = Float32Array.from((await net.read(blob!)).subarray(0, shown * height * width));
    maps.push({ layer: layer.spec.name, channels, shape: [shown, height, width], values });
  }
  return maps;
}

/** The last image's last hidden layer, from the predictor that ran it. */
let query: { net: Net; hidden: Float32Array } | undefined;
/** The training images' last hidden layer under the weights it was computed with. */
let database: { params: Tensors; sets: typeof sets; rows: Float32Array; width: number } | undefined;

/** The training images nearest to the last image in the last hidden layer (the paper's Figure 4). */
async function neighbours(request: Extract<Request, { type: 'neighbours' }>): Promise<Neighbours> {
  if (!query || !model?.params || query.net !== predictor?.net) throw new Error('classify an image first');
  if (!sets) throw new Error('load data first: its training images are searched');
  const m = model,
    params = model.params;
  const [channels, height, width] = query.net.shapeOf(netRoles(query.net).data).slice(1);
  const shape = sets.train.shape;
  if (formatShape([channels!, height!, width!]) !== formatShape(shape))
    throw new Error(
      `the data's images are ${formatShape(shape)} and the model takes ${formatShape([channels!, height!, width!])}: no neighbours to search`,
    );
  if (database?.params !== params || database.sets !== sets) {
    const { mean, std } = uniformNormalisation(m.preprocess!, m.source);
    const net = Net.build(m.spec, { backend: needBackend(), batch: 100, inference: true, weights: params });
    try {
      database = { params, sets, ...(await features(net, lastHiddenBlob(net), imageSetBatches(sets.train, mean, std, PLAIN))) };
    } finally {
      net.dispose();
    }
  }
  const [found] = nearestNeighbours(query.hidden, database.rows, database.width, request.count);
  const size = shape[0] * shape[1] * shape[2];
  return {
    layer: lastHiddenBlob(query.net),
    images: found!.map((n) => ({
      pixels: sets!.train.pixels.slice(n.index * size, (n.index + 1) * size),
      shape: [...shape],
      label: sets!.train.labels[n.index]!,
      distance: n.distance,
    })),
  };
}

const PLAIN = { pad: 0, flip: false };

function save(): NamedBytes {
  if (state === 'training') throw new Error('pause the run first: a checkpoint is written between two steps');
  if (run.has('last')) {
    const bytes = run.checkpoints.get('last')!;
    return { name: 'alexnet-run.safetensors', bytes: bytes.slice().buffer };
  }
  if (!model?.params) throw new Error('nothing to save: the model has no weights yet (train it first)');
  const options = {
    ...(model.preprocess ? { preprocess: model.preprocess } : {}),
    ...(model.classNames ? { classNames: model.classNames } : {}),
  };
  const bytes = encodeCheckpoint({ spec: model.spec, params: model.params, state: { options } });
  return { name: `${model.source.replace(/\.[^.]*$/, '').replace(/[^\w.-]+/g, '-')}.safetensors`, bytes: bytes.slice().buffer };
}

async function handle(request: Request): Promise<unknown> {
  switch (request.type) {
    case 'start':
      return start(request);
    case 'open':
      return open(request);
    case 'data':
      return loadData(request);
    case 'train':
      return trainModel(request);
    case 'pause':
    case 'stop':
      pauseAsked = state === 'training';
      stopAsked = request.type === 'stop';
      return { state };
    case 'predict':
      return predict(request);
    case 'neighbours':
      return neighbours(request);
    case 'save':
      return save();
  }
}

scope.onmessage = (event) => {
  const { id, ...request } = event.data;
  handle(request as Request).then(
    (value) => {
      const transfer = value && typeof value === 'object' && 'bytes' in value ? [(value as NamedBytes).bytes] : [];
      post({ id, ok: true, value: value as never }, transfer);
    },
    (error: unknown) => post({ id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
};
