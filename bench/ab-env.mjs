// A/B of an environment setting that the engine reads at each call (ALEXNET_DNNL_LAYOUT=nchw), in one
// process on one net: the setting switched every step, one warm-up step after each switch, the
// median of the per-round time ratios (the machine's speed drifts too much between runs; see ab.mjs).
//   node bench/ab-env.mjs NAME=VALUE [--model M] [--batch N] [--rounds R] [--train] [--backend B] [--threads T]
// prints A (NAME unset) and B (NAME=VALUE) medians and the median of B ÷ A.
import { parseArgs } from 'node:util';
import { createBackend } from '../dist/src/backend/choose.js';
import { resolveModel } from '../dist/src/models/index.js';
import { median, netStep } from './net-step.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: 'alexnet-torchvision' },
    batch: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '6' },
    train: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'native' },
    threads: { type: 'string', default: '2' },
  },
});
const [setting] = positionals;
if (positionals.length !== 1 || !setting.includes('=')) throw new Error('usage: node bench/ab-env.mjs NAME=VALUE [--model M] …');
const [name, value] = [setting.slice(0, setting.indexOf('=')), setting.slice(setting.indexOf('=') + 1)];
const batch = Number(values.batch);
const { backend } = await createBackend(values.backend, Number(values.threads));
const oneStep = netStep(backend, resolveModel(values.model), batch, values.train);
const once = () => {
  const start = performance.now();
  oneStep();
  return performance.now() - start;
};
const step = (b) => {
  if (b) process.env[name] = value;
  else delete process.env[name];
  once();
  return once();
};
const [a, b] = [[], []];
for (let round = 0; round < Number(values.rounds); round++) {
  const first = round % 2 === 1;
  const t = [step(first), step(!first)];
  a.push(first ? t[1] : t[0]);
  b.push(first ? t[0] : t[1]);
}
const pass = values.train ? 'training step' : 'inference';
console.log(
  `${values.model} b${batch} ${pass}: A ${median(a).toFixed(2)} ms, B (${setting}) ${median(b).toFixed(2)} ms, ` +
    `median B ÷ A ${median(b.map((t, i) => t / a[i])).toFixed(3)}`,
);
await backend.dispose();
