/**
 * The page: controls and pictures. Everything heavy happens in the engine (engine.ts, a Worker);
 * the page sends it requests, draws what it reports, and keeps working when a request fails: the
 * failure is shown where the user looks, and the model, data and run stay as they were.
 */
import { models } from '../models/index.js';
import { roundHalfEven } from '../data/preprocess.js';
import { filterGrid } from '../report/filters.js';
import { formatShape } from '../tensor.js';
import type { EpochMetrics } from '../train/run-store.js';
import type {
  BackendInfo,
  DataInfo,
  Event,
  FeatureMaps,
  Filters,
  Miss,
  ModelInfo,
  NamedBytes,
  Neighbours,
  Prediction,
  Progress,
  Reply,
  Request,
  RunState,
} from './protocol.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const engine = new Worker(new URL('./engine.js', import.meta.url), { type: 'module' });
const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
let nextId = 1;

function call<T>(request: Request, transfer: Transferable[] = []): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
    engine.postMessage({ id, ...request }, transfer);
  });
}

engine.onmessage = (event: MessageEvent<Reply | Event>) => {
  const message = event.data;
  if ('event' in message) return onEvent(message);
  const waiting = pending.get(message.id);
  pending.delete(message.id);
  if (message.ok) waiting?.resolve(message.value);
  else waiting?.reject(new Error(message.error));
};
engine.onerror = (event) => showError(`the engine failed: ${event.message || 'its script did not load'}`);

/** The page's state: what the engine holds, as far as the page needs to know. */
let model: ModelInfo | undefined;
let data: DataInfo | undefined;
let runState: RunState = 'idle';
const losses: { step: number; loss: number }[] = [];
const errors: { step: number; train: number; validation: number }[] = [];
let stepsPerEpoch = 1;

function showError(text: string): void {
  const box = $('message');
  box.textContent = text;
  box.hidden = false;
}

function clearError(): void {
  $('message').hidden = true;
}

/** Runs a request for a control; a failure is shown, and the page goes on. */
async function attempt<T>(what: () => Promise<T>): Promise<T | undefined> {
  clearError();
  try {
    return await what();
  } catch (error) {
    showError((error as Error).message);
    return undefined;
  }
}

const percent = (x: number) => `${(100 * x).toFixed(2)} %`;
const duration = (seconds: number) =>
  seconds >= 3600 ? `${(seconds / 3600).toFixed(1)} h` : seconds >= 60 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;

async function start(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const backend = params.get('backend');
  const threads = Number(params.get('threads') ?? '') || undefined;
  if (!crossOriginIsolated) {
    const note = $('isolation');
    note.textContent =
      'This page is not cross-origin isolated (its server sends no Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp headers), so WebAssembly runs on one thread.';
    note.hidden = false;
  }
  const info = await attempt(() =>
    call<BackendInfo>({
      type: 'start',
      ...(backend === 'wasm' || backend === 'webgpu' ? { backend } : {}),
      ...(threads ? { threads } : {}),
    }),
  );
  if (!info) {
    $('backend').textContent = 'The engine could not start.';
    return;
  }
  $('backend').textContent = `Backend: ${info.name} — ${info.detail}`;
  const zoo = $<HTMLSelectElement>('zoo');
  zoo.add(new Option(`${BUNDLED.name}: ${BUNDLED.describe}`, BUNDLED.name));
  for (const [name, entry] of Object.entries(models)) zoo.add(new Option(`${name}: ${entry.describe}`, name));
  await openZoo();
  await loadSample();
  document.body.dataset.ready = 'true';
}

/** The net the page opens first, built with it (tools/build-app.mjs): something to classify with at once. */
const BUNDLED = {
  name: 'fashion-mnist.safetensors',
  describe: 'the scaled AlexNet trained on Fashion-MNIST (bundled: 91.1 % test accuracy)',
  url: './assets/fashion-mnist.safetensors',
};

async function openZoo(): Promise<void> {
  const name = $<HTMLSelectElement>('zoo').value;
  if (name !== BUNDLED.name) return showModel(() => call<ModelInfo>({ type: 'open', zoo: name }));
  await showModel(async () => {
    const response = await fetch(BUNDLED.url);
    if (!response.ok) throw new Error(`the bundled model is missing (${BUNDLED.url}: HTTP ${response.status})`);
    const bytes = await response.arrayBuffer();
    return call<ModelInfo>({ type: 'open', file: { name: BUNDLED.name, bytes } }, [bytes]);
  });
}

async function showModel(open: () => Promise<ModelInfo>): Promise<void> {
  const shown = $('model-status').textContent;
  $('model-status').textContent = 'Opening…';
  const info = await attempt(open);
  if (!info) {
    $('model-status').textContent = shown;
    return;
  }
  model = info;
  $('model-status').textContent = describeModel(info);
  const body = $('layers').querySelector('tbody')!;
  body.replaceChildren(
    ...info.layers.map((layer) => {
      const row = document.createElement('tr');
      for (const text of [layer.name, layer.type, layer.outputShapes.map(formatShape).join(', '), layer.params.toLocaleString('en')]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
  resetCurves();
  if (info.filters) drawFilters(info.filters);
  else clearCanvas($<HTMLCanvasElement>('filters'));
  setRunState('idle');
}

function describeModel(info: ModelInfo): string {
  const weights = info.resumable
    ? 'a training run: Train continues it'
    : info.trained
      ? 'trained weights (Save checkpoint writes them for the CLI)'
      : 'no weights yet: train it';
  return (
    `${info.source} (${info.kind}): ${formatShape(info.input)} input, ${info.classes} classes, ` +
    `${info.parameters.toLocaleString('en')} parameters; ${weights}.`
  );
}

/** A chosen file's bytes, named by its path in a chosen folder (a photo's class is its folder) or its name. */
async function readFile(file: File): Promise<NamedBytes> {
  return { name: file.webkitRelativePath || file.name, bytes: await file.arrayBuffer() };
}

async function loadSample(): Promise<void> {
  await showData(() => call<DataInfo>({ type: 'data', url: './sample/' }));
}

async function showData(load: () => Promise<DataInfo>): Promise<void> {
  $('data-status').textContent = 'Reading the data…';
  const info = await attempt(load);
  if (info) data = info;
  $('data-status').textContent = data
    ? `${data.source}: ${data.train.toLocaleString('en')} training images, ${data.validation.toLocaleString('en')} held out for ` +
      `validation, ${data.test.toLocaleString('en')} test images of ${formatShape(data.shape)}, ${data.classes} classes.`
    : '';
  if (info) resetCurves();
}

function setRunState(state: RunState): void {
  runState = state;
  const training = state === 'training';
  $<HTMLButtonElement>('train').disabled = training;
  $<HTMLButtonElement>('train').textContent =
    state === 'paused' || state === 'stopped' ? 'Resume' : state === 'finished' ? 'Train more' : 'Train';
  $<HTMLButtonElement>('pause').disabled = !training;
  $<HTMLButtonElement>('stop').disabled = !training;
  $<HTMLButtonElement>('save').disabled = training || !(model?.trained || state !== 'idle');
  for (const id of ['zoo', 'model-file', 'data-source', 'data-files', 'data-folder', 'batch']) $<HTMLInputElement>(id).disabled = training;
  document.body.dataset.run = state;
}

function onEvent(message: Event): void {
  switch (message.event) {
    case 'progress':
      return showProgress(message.progress);
    case 'epoch':
      return showEpoch(message.metrics);
    case 'filters':
      return drawFilters(message.filters);
    case 'validation':
      return showValidation(message.confusion, message.misses);
    case 'state':
      if (message.error) showError(message.error);
      if (message.state !== 'training' && message.state !== 'idle' && model) {
        model = { ...model, trained: true };
        $('model-status').textContent = describeModel(model);
      }
      return setRunState(message.state);
  }
}

function showProgress(p: Progress): void {
  stepsPerEpoch = p.batches;
  losses.push({ step: p.step, loss: p.loss });
  $('progress').textContent =
    `Epoch ${p.epoch} of ${p.epochs}, batch ${p.batch} of ${p.batches}: loss ${p.loss.toFixed(4)}, ` +
    `${Math.round(p.imagesPerSecond)} images/s, about ${duration(p.eta)} left.`;
  // drawn with the screen's frames, not every step: on a machine of few cores the page's own
  // work takes time from the training threads
  redraw ??= requestAnimationFrame(() => {
    redraw = undefined;
    drawCurves();
  });
}

let redraw: number | undefined;

function showEpoch(m: EpochMetrics): void {
  errors.push({ step: m.step, train: m.trainError, validation: m.valTop1Error });
  const row = document.createElement('tr');
  for (const text of [
    String(m.epoch),
    m.loss.toFixed(4),
    percent(m.trainError),
    percent(m.valTop1Error),
    percent(m.valTop5Error),
    String(Math.round(m.imagesPerSecond)),
  ]) {
    const cell = document.createElement('td');
    cell.textContent = text;
    row.append(cell);
  }
  $('epochs-table').querySelector('tbody')!.append(row);
  drawCurves();
}

const className = (c: number) => (c < 0 ? 'no class (NaN scores)' : (data?.classNames?.[c] ?? `class ${c}`));

/** The confusion matrix as a table (each cell shaded by its share of its row), and the misses as pictures. */
function showValidation(confusion: number[][], misses: Miss[]): void {
  const table = $('confusion');
  table.hidden = confusion.length === 0;
  const header = document.createElement('tr');
  header.append(cell('th', 'label ↓ top-1 →'), ...confusion.map((_, c) => cell('th', className(c), 'col')));
  table.querySelector('thead')!.replaceChildren(header);
  table.querySelector('tbody')!.replaceChildren(
    ...confusion.map((row, r) => {
      const tr = document.createElement('tr');
      const total = row.reduce((a, b) => a + b, 0) || 1;
      tr.append(
        cell('th', className(r), 'row'),
        ...row.map((count, c) => {
          const td = cell('td', String(count));
          const share = count / total;
          td.style.background = `rgba(${r === c ? '26, 95, 180' : '192, 28, 40'}, ${share.toFixed(3)})`;
          if (share > 0.5) td.style.color = 'white';
          return td;
        }),
      );
      return tr;
    }),
  );
  $('misses-box').hidden = misses.length === 0;
  $('misses').replaceChildren(
    ...misses.map((miss) => {
      const item = document.createElement('li');
      const words = `${className(miss.label)} → ${className(miss.predicted)}`;
      item.append(imageCanvas(miss.pixels, miss.shape, words), words);
      return item;
    }),
  );
}

function cell(kind: 'td' | 'th', text: string, scope?: 'col' | 'row'): HTMLTableCellElement {
  const element = document.createElement(kind);
  element.textContent = text;
  if (scope) element.scope = scope;
  return element;
}

function resetCurves(): void {
  losses.length = 0;
  errors.length = 0;
  $('epochs-table').querySelector('tbody')!.replaceChildren();
  $('progress').textContent = '';
  showValidation([], []);
  drawCurves();
}

function clearCanvas(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const g = canvas.getContext('2d')!;
  g.fillStyle = 'white';
  g.fillRect(0, 0, canvas.width, canvas.height);
  return g;
}

/** The loss of every step (left axis), and each epoch's training and validation error (right axis, 0–100 %). */
function drawCurves(): void {
  const canvas = $<HTMLCanvasElement>('loss-chart');
  const g = clearCanvas(canvas);
  const [left, right, top, bottom] = [44, canvas.width - 40, 10, canvas.height - 24];
  const steps = Math.max(stepsPerEpoch, losses.at(-1)?.step ?? 1, errors.at(-1)?.step ?? 1);
  const maxLoss = Math.max(0.5, ...losses.map((l) => (Number.isFinite(l.loss) ? l.loss : 0)));
  const x = (step: number) => left + ((right - left) * step) / steps;
  g.strokeStyle = '#888';
  g.strokeRect(left, top, right - left, bottom - top);
  g.fillStyle = '#333';
  g.font = '11px system-ui, sans-serif';
  g.fillText(maxLoss.toFixed(2), 4, top + 8);
  g.fillText('0', 30, bottom);
  g.fillText('100 %', right + 4, top + 8);
  g.fillText(`step ${steps}`, right - 50, bottom + 16);
  g.strokeStyle = '#1a5fb4';
  g.beginPath();
  losses.forEach((l, i) => {
    const y = bottom - ((bottom - top) * Math.min(l.loss, maxLoss)) / maxLoss;
    if (i === 0) g.moveTo(x(l.step), y);
    else g.lineTo(x(l.step), y);
  });
  g.stroke();
  for (const [key, colour] of [
    ['train', '#e66100'],
    ['validation', '#c01c28'],
  ] as const) {
    g.fillStyle = colour;
    for (const e of errors) {
      g.beginPath();
      if (key === 'train') g.rect(x(e.step) - 3.5, bottom - (bottom - top) * e.train - 3.5, 7, 7);
      else g.arc(x(e.step), bottom - (bottom - top) * e.validation, 4, 0, 2 * Math.PI);
      g.fill();
    }
  }
  const last = losses.at(-1);
  // the numbers behind the picture, for scripts (the browser tests read them)
  canvas.dataset.firstLoss = String(losses[0]?.loss ?? '');
  canvas.dataset.lastLoss = String(last?.loss ?? '');
  canvas.setAttribute(
    'aria-label',
    last
      ? `Training loss per step: ${last.loss.toFixed(4)} at step ${last.step}` +
          (errors.length
            ? `; after epoch ${errors.length}, training error ${percent(errors.at(-1)!.train)}, ` +
              `validation error ${percent(errors.at(-1)!.validation)}`
            : '')
      : 'Training loss per step: no training yet',
  );
}

function drawFilters(filters: Filters): void {
  const { pixels, width, height } = filterGrid(filters.weight, filters.shape, filters.columns);
  const canvas = $<HTMLCanvasElement>('filters');
  const scale = Math.max(1, Math.ceil(240 / Math.max(width, height)));
  canvas.width = width * scale;
  canvas.height = height * scale;
  const image = new ImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    image.data.set([pixels[3 * p]!, pixels[3 * p + 1]!, pixels[3 * p + 2]!, 255], 4 * p);
  }
  const g = canvas.getContext('2d')!;
  g.imageSmoothingEnabled = false;
  void createImageBitmap(image).then((bitmap) => g.drawImage(bitmap, 0, 0, canvas.width, canvas.height));
  canvas.setAttribute('aria-label', `The first layer's ${filters.shape[0]} filters of ${formatShape(filters.shape.slice(1))}`);
}

/** The image brought to the model's input as its preprocessing says: the shorter side rescaled and the
 * centre cropped, or stretched. The browser's resampling is not libvips': a photo of another size
 * than the input can score slightly differently than `alexnet predict` scores it. */
async function classify(image: Blob | HTMLVideoElement, { neighbours = true } = {}): Promise<void> {
  if (!model) return;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(image);
  } catch {
    const what = image instanceof File ? image.name : image instanceof Blob ? 'the pasted data' : "the webcam's frame";
    showError(`${what} is not an image this browser can decode`);
    return;
  }
  const [, height, width] = model.input as [number, number, number];
  const canvas = $<HTMLCanvasElement>('input');
  canvas.width = width;
  canvas.height = height;
  const g = clearCanvas(canvas);
  g.imageSmoothingQuality = 'high';
  const resize = model.preprocess?.resize;
  if (resize) {
    const scale = resize / Math.min(bitmap.width, bitmap.height);
    const [w, h] = [Math.round(bitmap.width * scale), Math.round(bitmap.height * scale)];
    g.drawImage(bitmap, -roundHalfEven((w - width) / 2), -roundHalfEven((h - height) / 2), w, h);
  } else {
    g.drawImage(bitmap, 0, 0, width, height);
  }
  const rgba = g.getImageData(0, 0, width, height).data;
  const prediction = await attempt(() => call<Prediction>({ type: 'predict', width, height, rgba, top: 5 }));
  const list = $('top5');
  list.dataset.predictions = String(Number(list.dataset.predictions ?? 0) + 1);
  list.replaceChildren(
    ...(prediction?.top ?? []).map((entry) => {
      const item = document.createElement('li');
      const label = `${entry.name ?? `class ${entry.class}`}: ${(100 * entry.probability).toFixed(2)} %`;
      item.textContent = label;
      item.dataset.class = String(entry.class);
      item.dataset.probability = String(entry.probability);
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, 100 * entry.probability)}%`;
      bar.setAttribute('aria-hidden', 'true');
      item.append(bar);
      return item;
    }),
  );
  showMaps(prediction?.maps ?? []);
  if (prediction && neighbours) await showNeighbours();
  else $('neighbours-box').hidden = true;
}

/** The webcam's frames classified once a second while it is on. */
let webcam: { stream: MediaStream; timer: ReturnType<typeof setInterval> } | undefined;

async function toggleWebcam(): Promise<void> {
  const button = $<HTMLButtonElement>('webcam');
  const video = $<HTMLVideoElement>('webcam-video');
  if (webcam) {
    clearInterval(webcam.timer);
    for (const track of webcam.stream.getTracks()) track.stop();
    webcam = undefined;
    video.hidden = true;
    button.textContent = 'Start the webcam';
    return;
  }
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (error) {
    return showError(`no webcam: ${(error as Error).message}`);
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  let busy = false;
  const timer = setInterval(() => {
    if (busy || video.readyState < 2) return;
    busy = true;
    void classify(video, { neighbours: false }).finally(() => (busy = false));
  }, 1000);
  webcam = { stream, timer };
  button.textContent = 'Stop the webcam';
}

/** A C×H×W byte image (grey for one channel) as a canvas labelled with `words`. */
function imageCanvas(pixels: ArrayLike<number>, [channels, height, width]: number[], words: string): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  [canvas.width, canvas.height] = [width!, height!];
  const plane = width! * height!;
  const image = new ImageData(width!, height!);
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) image.data[4 * p + k] = pixels[(channels === 3 ? k : 0) * plane + p]!;
    image.data[4 * p + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(image, 0, 0);
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', words);
  return canvas;
}

/** Each layer's maps in a row, each map scaled to its own range. */
function showMaps(maps: FeatureMaps[]): void {
  $('maps-box').hidden = maps.length === 0;
  $('maps').replaceChildren(
    ...maps.map((m) => {
      const row = document.createElement('div');
      row.className = 'maps-row';
      const [shown, height, width] = m.shape as [number, number, number];
      const title = document.createElement('span');
      title.textContent = `${m.layer}: ${shown} of ${m.channels}, ${width}×${height}`;
      row.append(title);
      for (let c = 0; c < shown; c++) {
        const map = m.values.subarray(c * width * height, (c + 1) * width * height);
        let [lo, hi] = [Infinity, -Infinity];
        for (const v of map) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
        const grey = Array.from(map, (v) => Math.round((255 * (v - lo)) / (hi - lo || 1)));
        row.append(imageCanvas(grey, [1, height, width], `${m.layer} map ${c + 1}: from ${lo.toFixed(3)} to ${hi.toFixed(3)}`));
      }
      return row;
    }),
  );
}

async function showNeighbours(): Promise<void> {
  $('neighbours-box').hidden = false;
  $('neighbours-status').textContent = 'Searching the training images…';
  $('neighbours').replaceChildren();
  try {
    const found = await call<Neighbours>({ type: 'neighbours', count: 5 });
    $('neighbours-status').textContent = `In ${found.layer}, nearest first:`;
    $('neighbours').replaceChildren(
      ...found.images.map((n) => {
        const item = document.createElement('li');
        const words = `${className(n.label)}, distance ${n.distance.toFixed(2)}`;
        item.append(imageCanvas(n.pixels, n.shape, words), words);
        return item;
      }),
    );
  } catch (error) {
    $('neighbours-status').textContent = `No neighbours: ${(error as Error).message}`;
  }
}

function download(file: NamedBytes): void {
  const url = URL.createObjectURL(new Blob([file.bytes], { type: 'application/octet-stream' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = file.name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function wire(): void {
  $('zoo').addEventListener('change', () => void openZoo());
  $<HTMLInputElement>('model-file').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file)
      void showModel(async () => {
        const named = await readFile(file);
        return call<ModelInfo>({ type: 'open', file: named }, [named.bytes]); // moved, not copied: a .pth can be 233 MB
      });
  });
  $<HTMLSelectElement>('data-source').addEventListener('change', (event) => {
    const source = (event.target as HTMLSelectElement).value;
    $('data-files-label').hidden = source !== 'files';
    $('data-folder-label').hidden = source !== 'folder';
    if (source === 'sample') void loadSample();
  });
  $<HTMLInputElement>('data-folder').addEventListener('change', (event) => {
    const files = Array.from((event.target as HTMLInputElement).files ?? []);
    if (files.length === 0) return;
    $('data-status').textContent = `Decoding ${files.length} files…`;
    void showData(async () => {
      const photos = await Promise.all(files.map(readFile));
      return call<DataInfo>(
        { type: 'data', photos },
        photos.map((p) => p.bytes),
      );
    });
  });
  $<HTMLInputElement>('data-files').addEventListener('change', (event) => {
    const files = Array.from((event.target as HTMLInputElement).files ?? []);
    if (files.length)
      void showData(async () => {
        const named = await Promise.all(files.map(readFile));
        return call<DataInfo>(
          { type: 'data', files: named },
          named.map((f) => f.bytes),
        );
      });
  });
  $('train').addEventListener('click', () => {
    const epochs = Number($<HTMLInputElement>('epochs').value);
    const batch = Number($<HTMLInputElement>('batch').value) || undefined;
    if (!(Number.isInteger(epochs) && epochs >= 1)) return showError('epochs must be a whole number, 1 or more');
    if (runState === 'idle') resetCurves();
    void attempt(() => call({ type: 'train', epochs, ...(batch ? { batch } : {}) }));
  });
  $('pause').addEventListener('click', () => void attempt(() => call({ type: 'pause' })));
  $('stop').addEventListener('click', () => void attempt(() => call({ type: 'stop' })));
  $('save').addEventListener('click', () => void attempt(async () => download(await call<NamedBytes>({ type: 'save' }))));
  const drop = $('drop');
  const picker = $<HTMLInputElement>('image-file');
  picker.addEventListener('change', () => picker.files?.[0] && void classify(picker.files[0]));
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) void classify(file);
  });
  $('webcam').addEventListener('click', () => void toggleWebcam());
  document.addEventListener('paste', (event) => {
    const item = Array.from(event.clipboardData?.items ?? []).find((i) => i.type.startsWith('image/'));
    const file = item?.getAsFile();
    if (file) void classify(file);
  });
}

wire();
void start();
