// TensorFlow.js peer for `npm run bench` (wasm backend for inference, cpu backend for a training
// sample) and bench/gpu.mjs (its webgpu backend, on Dawn's adapter as ours gets it). TF.js has no
// grouped convolution: the paper's two columns are split + concat here.
// Usage: node tfjs.mjs BACKEND MODEL MODE BATCH THREADS STEPS
import * as tf from '@tensorflow/tfjs'; // the full package: it registers the gradients, tfjs-core alone has none
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const [backend, model, mode, batch, threads, steps] = [
  process.argv[2],
  process.argv[3],
  process.argv[4],
  +process.argv[5],
  +process.argv[6],
  +process.argv[7],
];
if (backend === 'wasm') {
  setWasmPaths(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')) + '/');
  setThreadsCount(threads);
}
if (backend === 'webgpu') {
  const { nodeGpuAdapter } = await import('../../dist/src/backend/webgpu/node.js');
  const found = await nodeGpuAdapter(); // the adapter our backend runs on
  if (typeof found === 'string') throw new Error(found);
  // Node has no navigator.gpu; TF.js asks it for the adapter.
  globalThis.navigator = { gpu: { requestAdapter: async () => found.adapter, getPreferredCanvasFormat: () => 'rgba8unorm' } };
  await import('@tensorflow/tfjs-backend-webgpu'); // registers itself only where navigator.gpu exists
}
await tf.setBackend(backend);
await tf.ready();
let gpuError = null; // TF.js carries on after a WebGPU validation error, with wrong results: not a result to report
tf.backend().device?.addEventListener('uncapturederror', (e) => (gpuError ??= e.error.message.split('\n')[0]));

const w = (shape) => tf.variable(tf.randomNormal(shape, 0, 0.01));
function conv(x, cin, cout, k, stride, pad, groups = 1) {
  const weights = Array.from({ length: groups }, () => w([k, k, cin / groups, cout / groups]));
  const bias = w([cout]);
  return (input) => {
    const padded = pad
      ? tf.pad(input, [
          [0, 0],
          [pad, pad],
          [pad, pad],
          [0, 0],
        ])
      : input;
    const parts = groups === 1 ? [padded] : tf.split(padded, groups, 3);
    const outs = parts.map((p, g) => tf.conv2d(p, weights[g], stride, 'valid'));
    return tf.relu(tf.add(groups === 1 ? outs[0] : tf.concat(outs, 3), bias));
  };
}
function dense(cin, cout, relu = true) {
  const weight = w([cin, cout]),
    bias = w([cout]);
  return (x) => {
    const y = tf.add(tf.matMul(x, weight), bias);
    return relu ? tf.relu(y) : y;
  };
}
const pool = (x) => tf.maxPool(x, 3, 2, 'valid');
const lrn = (x) => tf.localResponseNormalization(x, 2, 2, 1e-4, 0.75); // the paper's α: per element of the sum
const layers =
  model === 'alexnet'
    ? [
        conv(null, 3, 96, 11, 4, 2),
        lrn,
        pool,
        conv(null, 96, 256, 5, 1, 2, 2),
        lrn,
        pool,
        conv(null, 256, 384, 3, 1, 1),
        conv(null, 384, 384, 3, 1, 1, 2),
        conv(null, 384, 256, 3, 1, 1, 2),
        pool,
      ]
    : [
        conv(null, 3, 64, 11, 4, 2),
        pool,
        conv(null, 64, 192, 5, 1, 2),
        pool,
        conv(null, 192, 384, 3, 1, 1),
        conv(null, 384, 256, 3, 1, 1),
        conv(null, 256, 256, 3, 1, 1),
        pool,
      ];
const fc = [dense(9216, 4096), dense(4096, 4096), dense(4096, 1000, false)];
const forward = (x) =>
  fc.reduce(
    (h, f) => f(h),
    tf.reshape(
      layers.reduce((h, f) => f(h), x),
      [batch, 9216],
    ),
  );
const x = tf.randomUniform([batch, 224, 224, 3], -0.5, 0.5);
const labels = tf.oneHot(tf.randomUniform([batch], 0, 1000, 'int32'), 1000);
const optimizer = tf.train.momentum(0.001, 0.9);
const step = async () => {
  if (mode === 'infer') {
    const y = tf.tidy(() => forward(x));
    await y.data();
    y.dispose();
    return;
  }
  const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, forward(x)), true);
  await loss.data();
  loss.dispose();
};
try {
  await step();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const ms = (performance.now() - start) / steps;
  if (gpuError) throw new Error(`WebGPU error: ${gpuError}`);
  console.log(
    JSON.stringify({
      peer: `tfjs-${tf.version_core}-${backend}`,
      model,
      mode,
      batch,
      threads,
      imagesPerSecond: (batch * 1000) / ms,
      msPerStep: ms,
    }),
  );
} catch (error) {
  console.log(
    JSON.stringify({
      peer: `tfjs-${tf.version_core}-${backend}`,
      model,
      mode,
      batch,
      threads,
      error: String(error.message ?? error).split('\n')[0],
    }),
  );
}
