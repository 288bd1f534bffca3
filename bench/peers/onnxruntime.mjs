// onnxruntime peers for `npm run bench`: onnxruntime-node (native, the npm package's own CPU binary)
// and onnxruntime-web (wasm, in Node), each running our net exported to ONNX, so both engines
// compute the same graph. Usage: node onnxruntime.mjs node|web MODEL BATCH THREADS STEPS
import { Net, ReferenceBackend, resolveModel } from '../../dist/src/index.js';
import { exportOnnx } from '../../dist/src/onnx/export.js';

const [engine, model, batch, threads, steps] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5], +process.argv[6]];
const ort = engine === 'node' ? await import('onnxruntime-node') : await import('onnxruntime-web');
const options = { graphOptimizationLevel: 'all' };
if (engine === 'node') Object.assign(options, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 });
else {
  ort.env.wasm.numThreads = threads;
  options.executionProviders = ['wasm'];
}
const net = Net.build(resolveModel(model), { backend: new ReferenceBackend(), batch, seed: 1 });
const onnx = await exportOnnx(net);
const [, c, h, w] = net.shapeOf('data');
net.dispose();
const session = await ort.InferenceSession.create(onnx, options);
const input = new ort.Tensor(
  'float32',
  Float32Array.from({ length: batch * c * h * w }, () => Math.random() - 0.5),
  [batch, c, h, w],
);
await session.run({ data: input });
const start = performance.now();
for (let i = 0; i < steps; i++) await session.run({ data: input });
const ms = (performance.now() - start) / steps;
const version = engine === 'node' ? (ort.env.versions?.node ?? ort.env.versions?.common) : ort.env.versions.web;
console.log(
  JSON.stringify({
    peer: `onnxruntime-${engine}-${version}`,
    model,
    mode: 'infer',
    batch,
    threads,
    imagesPerSecond: (batch * 1000) / ms,
    msPerStep: ms,
  }),
);
process.exit(0);
