// onnxruntime-web (wasm, in Node) peer for `npm run bench`: runs our net exported to ONNX, so both
// engines compute the same graph. Usage: node onnxruntime.mjs MODEL BATCH THREADS STEPS
import * as ort from 'onnxruntime-web';
import { Net, resolveModel } from '../../dist/src/index.js';
import { exportOnnx } from '../../dist/src/onnx/export.js';

const [model, batch, threads, steps] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
ort.env.wasm.numThreads = threads;
const net = Net.build(resolveModel(model), { batch, seed: 1 });
const onnx = await exportOnnx(net);
const [, c, h, w] = net.shapeOf('data');
net.dispose();
const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
const input = new ort.Tensor(
  'float32',
  Float32Array.from({ length: batch * c * h * w }, () => Math.random() - 0.5),
  [batch, c, h, w],
);
await session.run({ data: input });
const start = performance.now();
for (let i = 0; i < steps; i++) await session.run({ data: input });
const ms = (performance.now() - start) / steps;
console.log(
  JSON.stringify({
    peer: `onnxruntime-web-${ort.env.versions.web}`,
    model,
    mode: 'infer',
    batch,
    threads,
    imagesPerSecond: (batch * 1000) / ms,
    msPerStep: ms,
  }),
);
process.exit(0);
