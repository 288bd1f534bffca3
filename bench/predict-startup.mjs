#!/usr/bin/env node
/**
 * `alexnet predict` against PyTorch from a cold start: one photo classified by a torchvision-layout
 * state_dict, wall time of the whole process (start-up, reading the .pth, preprocessing, one
 * forward pass), alternated `--rounds` times; the two top-5s must agree. Run after `npm run build`:
 *   node bench/predict-startup.mjs --model alexnet.pth --image photo.jpg [--rounds 3] [--threads 2]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './net-step.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    image: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
  },
});
if (!values.model || !values.image) throw new Error('give --model (a torchvision-layout .pth) and --image');
const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');
const peer = join(import.meta.dirname, 'peers', 'pytorch_predict.py');

function timed(command, args) {
  const start = performance.now();
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: join(import.meta.dirname, 'peers') });
  if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr}`);
  return { seconds: (performance.now() - start) / 1000, stdout: r.stdout };
}

const ours = [],
  theirs = [];
for (let round = 0; round < Number(values.rounds); round++) {
  const a = timed(process.execPath, [
    cli,
    'predict',
    '--model',
    values.model,
    values.image,
    '--top',
    '5',
    '--json',
    '--threads',
    values.threads,
  ]);
  const b = timed('/usr/bin/python3', [peer, values.model, values.image, values.threads]);
  const classes = JSON.parse(a.stdout)[0].top.map((t) => t.class);
  const peerClasses = b.stdout
    .trim()
    .split(' ')
    .map((entry) => Number(entry.split(':')[0]));
  if (classes.join() !== peerClasses.join()) throw new Error(`top-5 differ: ours ${classes}, PyTorch ${peerClasses}`);
  ours.push(a.seconds);
  theirs.push(b.seconds);
  console.log(`round ${round + 1}: alexnet predict ${a.seconds.toFixed(2)} s, PyTorch ${b.seconds.toFixed(2)} s`);
}
const [a, b] = [median(ours), median(theirs)];
console.log(`median: alexnet predict ${a.toFixed(2)} s, PyTorch ${b.toFixed(2)} s, ours ÷ PyTorch ${(a / b).toFixed(2)}`);
