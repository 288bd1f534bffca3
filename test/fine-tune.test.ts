/**
 * Fine-tuning (`train --init-from`): a trained model's weights start a run on other data, its
 * classifier resized to the data's classes; `--freeze` leaves the layers below it as they were.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCheckpoint } from '../src/net/checkpoint.js';
import { columnDataset } from './helpers.js';
import { tinyHidden as tiny } from './specs.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures');

function alexnet(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args, '--threads', '1'], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

const dataset = (classes: number, seed: number) => columnDataset({ train: 320, test: 40, classes, seed, spec: tiny });

/** `train` into a new folder with a small batch and validation set. */
function train(data: string, ...args: string[]) {
  const out = join(mkdtempSync(join(tmpdir(), 'fine-tune-')), 'run');
  return { out, ...alexnet('train', '--data', data, '--out', out, '--epochs', '1', '--batch', '8', '--val', '40', ...args) };
}

const base = (() => {
  const data = dataset(4, 1);
  const run = train(data, '--model', join(data, 'tiny.json'));
  assert.equal(run.code, 0, run.stderr);
  return { out: run.out, params: readCheckpoint(join(run.out, 'last.safetensors')).params };
})();

test('--init-from with --freeze: the classifier is resized to the new classes and trained alone', () => {
  const r = train(dataset(2, 2), '--init-from', base.out, '--freeze');
  assert.equal(r.code, 0, r.stderr);
  const tuned = readCheckpoint(join(r.out, 'last.safetensors'));
  assert.deepEqual(tuned.params['out.weight']!.shape, [2, 16], 'a 2-class classifier');
  for (const name of ['conv1.weight', 'conv1.bias', 'fc.weight', 'fc.bias'])
    assert.deepEqual(Array.from(tuned.params[name]!.data), Array.from(base.params[name]!.data), `${name} frozen`);
  const options = tuned.state.options as { initFrom: string; frozen: string[]; mean: number };
  assert.equal(options.initFrom, base.out);
  assert.deepEqual(options.frozen, ['conv1', 'fc']);
  const stored = readCheckpoint(join(base.out, 'last.safetensors')).state.options as { mean: number };
  assert.equal(options.mean, stored.mean, "the data normalised as the model's own");
  assert.match(r.stdout, /test accuracy/);
});

test('--init-from without --freeze trains every layer; a model that does not fit the data is refused', () => {
  const data = dataset(4, 3);
  const r = train(data, '--init-from', base.out);
  assert.equal(r.code, 0, r.stderr);
  const tuned = readCheckpoint(join(r.out, 'last.safetensors'));
  assert.notDeepEqual(Array.from(tuned.params['conv1.weight']!.data), Array.from(base.params['conv1.weight']!.data));
  const never = join(mkdtempSync(join(tmpdir(), 'fine-tune-')), 'never');
  assert.match(
    alexnet('train', '--data', data, '--out', never, '--val', '40', '--init-from', base.out, '--freeze', 'conv9').stderr,
    /^alexnet: --freeze: no layer with parameters named conv9 \(layers: conv1, fc, out\)$/,
  );
  assert.match(
    alexnet('train', '--data', data, '--out', never, '--val', '40', '--init-from', 'alexnet-small-32').stderr,
    /^alexnet: --init-from alexnet-small-32: a zoo architecture has no weights$/,
  );
  assert.match(
    alexnet('train', '--data', data, '--out', never, '--val', '40', '--init-from', join(FIXTURES, 'pytorch-files', 'small_alexnet.pth'))
      .stderr,
    /^alexnet: the model takes 3×224×224 images, .* holds 1×8×8$/,
  );
});
