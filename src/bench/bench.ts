/** Timing a network's inference or training step on a backend; never part of the tests. */
import { type BackendChoice, createBackend } from '../backend/choose.js';
import { nativeOf } from '../backend/native/backend.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import { type LayerProfile, Net, summarize, planNet } from '../net/net.js';
import { netRoles, withLoss } from '../net/roles.js';
import type { NetSpec } from '../net/spec.js';
import { storeBatches, storePreprocess } from '../data/batches.js';
import { openStore, StoreReader } from '../data/store.js';
import { Philox, shuffled, streams } from '../random.js';
import { sizeOf } from '../tensor.js';
import { Sgd } from '../train/sgd.js';

export interface BenchOptions {
  spec: NetSpec;
  mode: 'train' | 'infer';
  batch: number;
  threads?: number;
  /** Default 'auto': native where a BLAS is found, else wasm. */
  backend?: BackendChoice;
  /** Timed steps after one warm-up step. */
  steps?: number;
}

export interface BenchResult {
  model: string;
  mode: 'train' | 'infer';
  batch: number;
  threads: number;
  backend: string;
  imagesPerSecond: number;
  /** Useful arithmetic per second: 2 FLOPs per multiply-add, training counted as 3× the forward. */
  gflops: number;
  msPerStep: number;
  /** CPU time over wall time while timing: how many cores were kept busy. */
  cpuUtilisation: number;
  steps: number;
  plannedBytes: number;
  layers: { name: string; type: string; forwardMs: number; backwardMs: number }[];
}

export async function bench(options: BenchOptions): Promise<BenchResult> {
  const threads = options.threads ?? 1;
  const training = options.mode === 'train';
  const { backend } = await createBackend(options.backend ?? 'auto', threads);
  const spec = training ? withLoss(options.spec) : options.spec;
  const net = Net.build(spec, { backend, batch: options.batch, seed: 1, inference: !training });
  const sgd = training ? new Sgd(net, { lr: 0.001 }) : null;
  const rng = new Philox(7);
  const { data, labels, classes } = netRoles(net);
  net.setInput(
    data,
    Float32Array.from({ length: sizeOf(net.shapeOf(data)) }, () => rng.nextFloat() - 0.5),
  );
  if (labels)
    net.setInput(
      labels,
      Float32Array.from({ length: sizeOf(net.shapeOf(labels)) }, () => rng.nextInt(classes)),
    );
  const step = async (profile?: LayerProfile) => {
    net.forward({ training, profile });
    if (training) {
      net.backward(undefined, { profile });
      sgd!.step();
    }
    await backend.flush(); // a GPU backend has only enqueued the step
  };
  await step(); // warm-up: compiles, sizes the scratch buffers
  const profile: LayerProfile = new Map();
  const steps = options.steps ?? 3;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < steps; i++) await step(profile);
  const msPerStep = (performance.now() - start) / steps;
  const cpu = process.cpuUsage(cpuStart);
  const macs = summarize(planNet(options.spec, 1)).reduce((n, r) => n + r.macsPerExample, 0);
  const result: BenchResult = {
    model: options.spec.name ?? 'net',
    mode: options.mode,
    batch: options.batch,
    threads,
    backend: backend instanceof WasmBackend ? `${backend.name}-${backend.simd}${nativeOf(backend)?.dnnl ? '-dnnl' : ''}` : backend.name,
    imagesPerSecond: (options.batch * 1000) / msPerStep,
    gflops: (2 * macs * (training ? 3 : 1) * options.batch) / msPerStep / 1e6,
    msPerStep,
    cpuUtilisation: (cpu.user + cpu.system) / 1000 / (msPerStep * steps),
    steps,
    plannedBytes: net.plannedBytes() + (sgd ? sgd.velocities.reduce((n, v) => n + 4 * v.size, 0) : 0),
    layers: net.layers.map((l) => ({
      name: l.name,
      type: l.spec.type,
      forwardMs: (profile.get(l.name)?.forward ?? 0) / steps,
      backwardMs: (profile.get(l.name)?.backward ?? 0) / steps,
    })),
  };
  sgd?.dispose();
  net.dispose();
  await backend.dispose();
  return result;
}

export function formatBench(r: BenchResult): string {
  const lines = [
    `${r.model} ${r.mode} batch ${r.batch}, ${r.threads} thread(s), ${r.backend}: ` +
      `${r.imagesPerSecond.toFixed(2)} images/s, ${r.gflops.toFixed(1)} GFLOP/s, ${r.msPerStep.toFixed(0)} ms/step, ` +
      `${r.cpuUtilisation.toFixed(2)} cores busy, ${(r.plannedBytes / 2 ** 20).toFixed(0)} MiB planned`,
    `${'layer'.padEnd(10)}${'forward ms'.padStart(12)}${'backward ms'.padStart(13)}`,
  ];
  for (const l of r.layers)
    if (l.forwardMs + l.backwardMs >= 0.05)
      lines.push(
        `${l.name.padEnd(10)}${l.forwardMs.toFixed(1).padStart(12)}${(r.mode === 'train' ? l.backwardMs.toFixed(1) : '').padStart(13)}`,
      );
  return lines.join('\n');
}

export interface LoaderBench {
  batch: number;
  batches: number;
  imagesPerSecond: number;
  msPerBatch: number;
  /** CPU time over wall time: the loader runs on the calling thread. */
  cpuUtilisation: number;
}

/** The store loader alone: augmented training batches (random crops, flips, PCA noise) of
 * `inputSize`² for `seconds`, on the calling thread. */
export async function benchLoader(dir: string, options: { batch: number; inputSize: number; seconds?: number }): Promise<LoaderBench> {
  const index = openStore(dir);
  const reader = new StoreReader(dir, index, 'train');
  const source = storeBatches(reader, options.inputSize, storePreprocess(reader), { crop: true, flip: true, pca: 0.1 });
  const x = new Float32Array(options.batch * 3 * options.inputSize ** 2),
    y = new Float32Array(options.batch);
  const order = shuffled(reader.count, 1, streams.epochOrder(0));
  let batches = 0;
  const start = performance.now(),
    cpuStart = process.cpuUsage();
  const until = start + 1000 * (options.seconds ?? 3);
  do {
    const from = (batches * options.batch) % Math.max(1, reader.count - options.batch + 1);
    source.fill(order, from, from + Math.min(options.batch, reader.count), x, y, { seed: 1, epoch: 0, position: batches * options.batch });
    batches++;
  } while (performance.now() < until);
  const ms = performance.now() - start,
    cpu = process.cpuUsage(cpuStart);
  reader.close();
  return {
    batch: options.batch,
    batches,
    imagesPerSecond: (batches * Math.min(options.batch, reader.count) * 1000) / ms,
    msPerBatch: ms / batches,
    cpuUtilisation: (cpu.user + cpu.system) / 1000 / ms,
  };
}
