// `npm run bench`: the standard set of configurations, ours and the peers' in the same run,
// configuration by configuration (so both see the same machine), with ratios.
// Options: --quick (the paper net, 2 threads, fewer configurations), --slow-peers (TensorFlow.js's
// pure-JS cpu backend for every net and inference too; the standard set runs it once, on the paper
// net's training step: minutes per image), --json FILE (write every result).
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { measure, run } from './measure.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const slowPeers = args.includes('--slow-peers');
const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;
const hasTorch = existsSync('/usr/bin/python3') && run('/usr/bin/python3', ['-c', 'import torch']) !== null;

const models = quick ? ['alexnet'] : ['alexnet', 'alexnet-torchvision'];
const threadCounts = quick ? [2] : [1, 2];
const configs = [];
for (const model of models)
  for (const threads of threadCounts) {
    configs.push({ model, mode: 'infer', batch: 1, threads, steps: 10 });
    configs.push({ model, mode: 'infer', batch: 64, threads, steps: 2 });
    configs.push({ model, mode: 'train', batch: 64, threads, steps: 2 });
    if (!quick) configs.push({ model, mode: 'train', batch: 128, threads, steps: 1 });
  }

console.log(`machine: ${cpus()[0]?.model} × ${availableParallelism()}, node ${process.version}`);
const all = [];
/** Our engine on one backend: the CLI's `bench --json`, plus the GEMM rate of that backend. */
const ours = (backend, c) =>
  measure(`alexnet-ts (${backend})`, process.execPath, [
    'dist/src/cli/main.js',
    'bench',
    '--model',
    c.model,
    '--mode',
    c.mode,
    '--batch',
    String(c.batch),
    '--threads',
    String(c.threads),
    '--steps',
    String(c.steps),
    '--backend',
    backend,
    '--json',
  ]);

// PyTorch allocates every activation afresh; glibc serves a block this large with mmap and returns it at free, so each
// one's pages fault in again. On the 2-vCPU AVX-512 VM that made an elementwise op over the paper net's conv1 output take
// 107 ms instead of 3.7, and PyTorch's paper-net training step 4× slower. A user who tunes PyTorch for the CPU keeps the
// memory (these settings, or jemalloc/tcmalloc preloaded): the second PyTorch row is that user. Both are needed: without
// mmap a freed block would still go back at the top of the heap; a threshold above glibc's 32 MiB cap is ignored.
const KEEP_MEMORY = { MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '68719476736' };

/** A peer is reported only as its users run it: PyTorch on a tuned BLAS, not Debian's reference one. */
function honest(row) {
  const reference = (row.blas ?? []).some((path) => /\/blas\/libblas\.so/.test(path));
  if (!reference) return row;
  return {
    ...row,
    imagesPerSecond: undefined,
    error: `refused: PyTorch runs on the reference BLAS (${row.blas.join(', ')}); install libopenblas0-pthread`,
  };
}

for (const c of configs) {
  const rows = [ours('native', c), ours('wasm', c)];
  if (hasTorch)
    for (const [label, env] of [
      ['PyTorch (Debian)', {}],
      ['PyTorch, malloc keeps memory', KEEP_MEMORY],
    ]) {
      const argv = ['bench/peers/pytorch_bench.py', c.model, c.mode, String(c.batch), String(c.threads), String(c.steps)];
      rows.push(honest(measure(label, '/usr/bin/python3', argv, env)));
    }
  if (c.mode === 'infer') {
    for (const engine of ['node', 'web']) {
      const label = engine === 'node' ? 'onnxruntime-node (native)' : 'onnxruntime-web (wasm)';
      rows.push(
        measure(label, process.execPath, [
          'bench/peers/onnxruntime.mjs',
          engine,
          c.model,
          String(c.batch),
          String(c.threads),
          String(c.steps),
        ]),
      );
    }
    rows.push(
      measure('TensorFlow.js wasm', process.execPath, [
        'bench/peers/tfjs.mjs',
        'wasm',
        c.model,
        'infer',
        String(c.batch),
        String(c.threads),
        String(c.steps),
      ]),
    );
  } else {
    rows.push(
      measure('TensorFlow.js wasm', process.execPath, ['bench/peers/tfjs.mjs', 'wasm', c.model, 'train', '1', String(c.threads), '1']),
    );
  }
  // TensorFlow.js's cpu backend needs minutes per training image: the standard set takes one sample
  // of the paper net's training step; --slow-peers adds the other nets and inference.
  const cpuSample =
    c.threads === 1 &&
    (c.mode === 'train' ? c.batch === 64 && (slowPeers || (!quick && c.model === 'alexnet')) : c.batch === 1 && slowPeers);
  if (cpuSample) {
    rows.push(measure('TensorFlow.js cpu (batch 1)', process.execPath, ['bench/peers/tfjs.mjs', 'cpu', c.model, c.mode, '1', '1', '1']));
  }
  const best = rows[0].imagesPerSecond;
  console.log(`\n${c.model} ${c.mode} batch ${c.batch}, ${c.threads} thread(s)`);
  for (const r of rows) {
    const value = r.imagesPerSecond ? `${r.imagesPerSecond.toFixed(2).padStart(8)} images/s` : `   ${r.error ?? 'no result'}`;
    const ratio = r.imagesPerSecond && r !== rows[0] && best ? `   native ÷ this = ${(best / r.imagesPerSecond).toFixed(2)}` : '';
    const blas = r.blas ? `   [BLAS ${r.blas.join(', ') || 'none loaded'}, ${r.gemmGflops.toFixed(0)} GFLOP/s at 1024³]` : '';
    console.log(`  ${r.label.padEnd(28)}${value}${ratio}${blas}`);
  }
  all.push({ ...c, results: rows });
}
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(all, null, 2));
