// Resident memory as a net is built, run once and disposed at one batch size after another, in one
// process: what the native backend's oneDNN plans and weight copies keep (BENCHMARKS.md, 2026-12-01, fully-connected layers in oneDNN).
//   node bench/plan-memory.mjs [--model M] [--batches 16,15,14]
import { parseArgs } from 'node:util';
import { createBackend } from '../dist/src/backend/choose.js';
import { resolveModel } from '../dist/src/models/index.js';
import { Net } from '../dist/src/net/net.js';

const { values } = parseArgs({
  options: { model: { type: 'string', default: 'alexnet-torchvision' }, batches: { type: 'string', default: '16,15,14,13,12,11,10,9' } },
});
const { backend } = await createBackend('native', 2);
const spec = resolveModel(values.model);
const rss = () => `${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`;
console.log(`${values.model}: ${rss()} before the first net`);
for (const batch of values.batches.split(',').map(Number)) {
  const net = Net.build(spec, { backend, batch, seed: 1 });
  net.forward();
  net.dispose();
  console.log(`batch ${batch}: ${rss()}`);
}
await backend.dispose();
