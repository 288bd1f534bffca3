// A/B of two builds of the wasm kernels on whole training steps, in one process: one net per build,
// steps alternating, the median of the per-pair time ratios. The machine's speed drifts by ±30 %
// within minutes, which whole-run benchmarks minutes apart cannot separate from a 10 % change;
// pairs of steps a few milliseconds apart see the same machine.
//   node bench/ab.mjs OLD.wasm NEW.wasm [--model M] [--batch N] [--steps S] [--threads T]
// (each a relaxed-SIMD shared-memory build, as `npm run build:wasm` writes to
// dist/wasm/kernels-relaxed.wasm; keep a copy of the old one before rebuilding).
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WasmBackend } from '../dist/src/backend/wasm/backend.js';
import { resolveModel } from '../dist/src/models/index.js';
import { median, netStep } from './net-step.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: 'alexnet-small-28' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '20' },
    threads: { type: 'string', default: '1' },
  },
});
if (positionals.length !== 2)
  throw new Error('usage: node bench/ab.mjs OLD.wasm NEW.wasm [--model M] [--batch N] [--steps S] [--threads T]');
const [batch, steps, threads] = [Number(values.batch), Number(values.steps), Number(values.threads)];
const spec = resolveModel(values.model);
const installed = fileURLToPath(new URL('../dist/wasm/kernels-relaxed.wasm', import.meta.url));
const original = readFileSync(installed);

/** A training step of the net on a backend loaded from `wasm` (the backend reads the build at creation). */
async function stepOn(wasm) {
  copyFileSync(wasm, installed);
  const backend = await WasmBackend.create({ threads, relaxedSimd: true });
  return netStep(backend, spec, batch);
}

try {
  const [a, b] = [await stepOn(positionals[0]), await stepOn(positionals[1])];
  a();
  b();
  const times = { a: [], b: [] };
  for (let i = 0; i < steps; i++) {
    for (const [name, step] of [
      ['a', a],
      ['b', b],
    ]) {
      const start = performance.now();
      step();
      times[name].push(performance.now() - start);
    }
  }
  const ratio = median(times.a.map((t, i) => times.b[i] / t));
  console.log(
    `${values.model} batch ${batch}, ${threads} thread(s): old ${median(times.a).toFixed(1)} ms, ` +
      `new ${median(times.b).toFixed(1)} ms per step; median new/old ${ratio.toFixed(3)}`,
  );
} finally {
  writeFileSync(installed, original);
}
process.exit(0);
