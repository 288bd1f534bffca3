// Inference against onnxruntime-node in one process: our net (native backend) and the same net
// exported to ONNX in an ORT session, timed in alternating steps, so that both see the same
// machine; separate runs of each varied by ±30 % on the shared VMs. ORT runs with its defaults
// (its threads spin between operators: turned off, its torchvision batch 64 took 706 ms instead of
// 616–622); a 20 ms pause before each step lets the other engine's threads settle. Prints the
// medians and the median of the per-round ratios ORT ÷ ours (above 1: ours is faster).
// At batch 1 ORT's spinning threads are still spinning when our step runs and take its cores
// (torchvision, one process: ours 29–32 ms with them, 22–27 without; ORT 18–21 either way), so
// `--ort-spinning off` is the fair setting there.
//   node bench/ab-ort.mjs [--model M] [--batch N] [--rounds R] [--threads T] [--ort-spinning on|off]
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { createBackend } from '../dist/src/backend/choose.js';
import { resolveModel } from '../dist/src/models/index.js';
import { Net } from '../dist/src/net/net.js';
import { ReferenceBackend } from '../dist/src/backend/reference/backend.js';
import { exportOnnx } from '../dist/src/onnx/export.js';
import { median, netStep } from './net-step.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'alexnet-torchvision' },
    batch: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    'ort-spinning': { type: 'string', default: 'on' },
  },
});
if (!['on', 'off'].includes(values['ort-spinning'])) throw new Error('--ort-spinning takes on or off');
const [batch, threads] = [Number(values.batch), Number(values.threads)];
const spec = resolveModel(values.model);
const exported = Net.build(spec, { backend: new ReferenceBackend(), batch, seed: 1 });
const onnx = await exportOnnx(exported);
const [, c, h, w] = exported.shapeOf('data');
exported.dispose();
const session = await ort.InferenceSession.create(onnx, {
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  ...(values['ort-spinning'] === 'off' ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
});
const input = new ort.Tensor(
  'float32',
  Float32Array.from({ length: batch * c * h * w }, () => Math.random() - 0.5),
  [batch, c, h, w],
);
const { backend } = await createBackend('native', threads);
const oursStep = netStep(backend, spec, batch, false);

const timed = async (run) => {
  await sleep(20);
  const start = performance.now();
  await run();
  return performance.now() - start;
};
const engines = [() => oursStep(), () => session.run({ data: input })];
for (const run of engines) await timed(run);
const [ours, peer] = [[], []];
for (let round = 0; round < Number(values.rounds); round++) {
  const order = round % 2 === 0 ? [0, 1] : [1, 0];
  for (const i of order) (i === 0 ? ours : peer).push(await timed(engines[i]));
}
console.log(
  `${values.model} b${batch} inference, ${threads} threads, ORT spinning ${values['ort-spinning']}: ` +
    `ours ${median(ours).toFixed(2)} ms, onnxruntime-node ${ort.env.versions?.node ?? ''} ${median(peer).toFixed(2)} ms, ` +
    `median ORT ÷ ours ${median(peer.map((t, i) => t / ours[i])).toFixed(3)}`,
);
await backend.dispose();
process.exit(0);
