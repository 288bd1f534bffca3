// The GPU benchmark, one script for a machine with a GPU (or, slowly, Mesa's llvmpipe): the adapter,
// the GEMM alone, our webgpu backend on the paper net and the torchvision net (training step and
// inference), and TensorFlow.js's webgpu backend on the same adapter in the same run.
// Usage: node bench/gpu.mjs [--size 4096] [--batch 128] [--steps 5] [--peak TFLOPS] [--json FILE]
// (--peak: the GPU's fp32 peak, to report the GEMM's share of it.)
import { writeFileSync } from 'node:fs';
import { createBackend } from '../dist/src/backend/choose.js';
import { measure } from './measure.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const size = +option('--size', 4096);
const batch = option('--batch', '128');
const steps = option('--steps', '5');
const peak = option('--peak', null);
const jsonFile = option('--json', null);

/** GFLOP/s of C = A·B at size³ on the webgpu backend, operands drawn on the GPU. */
async function gemmRate() {
  const { backend } = await createBackend('webgpu', 1);
  const [a, b, c] = [0, 1, 2].map(() => backend.allocate(size * size));
  for (const [i, buffer] of [a, b].entries()) {
    backend.run('random_fill', { length: size * size, seed: 1, stream: i, distribution: 'uniform', a: -1, b: 1 }, { y: buffer });
  }
  const params = { M: size, N: size, K: size, transA: false, transB: false, alpha: 1, beta: 0 };
  backend.run('gemm', params, { a, b, c });
  await backend.flush(); // warm-up: compiles the pipeline
  const reps = 5;
  const start = performance.now();
  for (let i = 0; i < reps; i++) backend.run('gemm', params, { a, b, c });
  await backend.flush();
  const seconds = (performance.now() - start) / 1000 / reps;
  const result = { adapter: backend.description, size, gflops: (2 * size ** 3) / seconds / 1e9 };
  await backend.dispose();
  return result;
}

const gemm = await gemmRate();
const share = peak ? ` = ${((gemm.gflops / (peak * 1000)) * 100).toFixed(1)} % of ${peak} TFLOP/s` : '';
console.log(`adapter: ${gemm.adapter}\nGEMM ${size}³: ${gemm.gflops.toPrecision(3)} GFLOP/s${share}`);
const rows = [];
for (const model of ['alexnet', 'alexnet-torchvision'])
  for (const mode of ['train', 'infer']) {
    const common = [model, mode, batch];
    const ours = measure('alexnet-ts webgpu', process.execPath, [
      'dist/src/cli/main.js',
      'bench',
      '--backend',
      'webgpu',
      '--model',
      model,
      '--mode',
      mode,
      '--batch',
      batch,
      '--steps',
      steps,
      '--json',
    ]);
    const tfjs = measure('TensorFlow.js webgpu', process.execPath, ['bench/peers/tfjs.mjs', 'webgpu', ...common, '1', steps]);
    rows.push({ model, mode, batch: +batch, ours, tfjs });
    const rate = (r) => (r.imagesPerSecond ? `${r.imagesPerSecond.toFixed(1)} images/s` : r.error);
    const ratio =
      ours.imagesPerSecond && tfjs.imagesPerSecond ? ` (ours ÷ TF.js = ${(ours.imagesPerSecond / tfjs.imagesPerSecond).toFixed(2)})` : '';
    console.log(`${model} ${mode} batch ${batch}: alexnet-ts webgpu ${rate(ours)}; TensorFlow.js webgpu ${rate(tfjs)}${ratio}`);
  }
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ gemm, peakTflops: peak && +peak, rows }, null, 2));
