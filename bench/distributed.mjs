// Data-parallel training steps over MPI against one process, on this machine: one process with T
// threads at batch B, then `mpirun -np N` ranks of T/N threads, each a step of B/N examples whose
// gradients are summed in place (`train --distributed`'s step). Reports each configuration's
// median step and images/s, the share of the ranks' step spent in the gradient sum, and the
// bandwidth MPI_Allreduce reaches on the net's gradients (algorithm bandwidth: bytes ÷ time).
//   node bench/distributed.mjs [--model alexnet-small-28] [--batch 64] [--ranks 2] [--threads 2] [--steps 10] [--backend native]
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createBackend } from '../dist/src/backend/choose.js';
import { launchedByMpi, loadMpi } from '../dist/src/backend/native/mpi.js';
import { resolveModel } from '../dist/src/models/index.js';
import { Net } from '../dist/src/net/net.js';
import { trainingRoles } from '../dist/src/net/roles.js';
import { DataParallel } from '../dist/src/train/distributed.js';
import { Sgd } from '../dist/src/train/sgd.js';
import { median } from './net-step.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'alexnet-small-28' },
    batch: { type: 'string', default: '64' },
    ranks: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '10' },
    backend: { type: 'string', default: 'native' },
  },
});
const [batch, ranks, threads, steps] = [values.batch, values.ranks, values.threads, values.steps].map(Number);

/** Times `steps` training steps (after one to warm up) in this process, as one rank or alone. */
async function measure(mpi) {
  const size = mpi?.size ?? 1;
  const { backend } = await createBackend(values.backend, mpi ? Math.max(1, threads / size) : threads);
  const net = Net.build(resolveModel(values.model), { backend, batch: batch / size, seed: 1 });
  const sgd = new Sgd(net, { lr: 0.001 });
  const roles = trainingRoles(net);
  net.setInput(
    roles.data,
    Float32Array.from({ length: net.shapeOf(roles.data).reduce((a, b) => a * b) }, () => Math.random() - 0.5),
  );
  net.setInput(
    roles.labels,
    Float32Array.from({ length: net.batch }, (_, i) => i % 10),
  );
  const parallel = mpi && new DataParallel(mpi, net);
  const grads = net.params.map((p) => p.grad);
  const [stepMs, sumMs] = [[], []];
  for (let s = 0; s <= steps; s++) {
    mpi?.barrier();
    const start = performance.now();
    net.forward({ training: true });
    net.backward(parallel ? { [roles.loss]: [1 / size] } : undefined);
    const summing = performance.now();
    if (parallel) await parallel.sumGradients(grads);
    const summed = performance.now();
    sgd.step();
    await net.read(roles.loss);
    if (s === 0) continue;
    stepMs.push(performance.now() - start);
    sumMs.push(summed - summing);
  }
  const bytes = net.params.reduce((n, p) => n + 4 * p.value.size, 0);
  await backend.dispose();
  return { stepMs: median(stepMs), sumMs: median(sumMs), bytes };
}

if (launchedByMpi()) {
  const mpi = loadMpi();
  if (typeof mpi === 'string') throw new Error(mpi);
  const result = await measure(mpi);
  if (mpi.rank === 0) console.log(JSON.stringify(result));
  mpi.finalize();
} else {
  const one = await measure(undefined);
  const run = spawnSync(
    'mpirun',
    ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', String(ranks), process.execPath, ...process.argv.slice(1)],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`mpirun failed: ${run.stderr}`);
  const many = JSON.parse(run.stdout.trim().split('\n').at(-1));
  const rate = (ms) => Math.round((1000 * batch) / ms);
  const gradients = `${(many.bytes / 2 ** 20).toFixed(1)} MiB`;
  console.log(`${values.model}, batch ${batch}, ${values.backend} backend, median of ${steps} steps; gradients ${gradients}`);
  console.log(`1 process × ${threads} threads: ${one.stepMs.toFixed(1)} ms per step, ${rate(one.stepMs)} images/s`);
  console.log(
    `${ranks} ranks × ${Math.max(1, threads / ranks)} thread${threads / ranks > 1 ? 's' : ''}: ${many.stepMs.toFixed(1)} ms per step, ` +
      `${rate(many.stepMs)} images/s (${(one.stepMs / many.stepMs).toFixed(2)}× one process); gradient sum ${many.sumMs.toFixed(1)} ms ` +
      `(${((100 * many.sumMs) / many.stepMs).toFixed(1)} % of the step), ${(many.bytes / 2 ** 30 / (many.sumMs / 1000)).toFixed(2)} GiB/s`,
  );
}
