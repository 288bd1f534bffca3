/** The `alexnet` command: output for good input, one clear line and a non-zero exit for bad input. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

function alexnet(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

test('info --json describes the paper net', () => {
  const r = alexnet('info', '--model', 'alexnet', '--json');
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { params: number; macsPerExample: number };
  assert.equal(info.params, 60_965_224);
});

test('info reads a JSON spec file and reports its errors by layer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ inputs: { data: [96, 8, 8] }, layers: [{ name: 'conv2', type: 'conv2d', outChannels: 10, kernel: 3, groups: 5 }] }));
  const r = alexnet('info', '--model', join(dir, 'bad.json'));
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'alexnet: conv2: 96 input channels are not divisible by groups=5');
  writeFileSync(join(dir, 'broken.json'), '{ "inputs": ');
  assert.match(alexnet('info', '--model', join(dir, 'broken.json')).stderr, /^alexnet: model spec .*broken.json is not valid JSON/);
});

const badInputs: [string, string[], RegExp][] = [
  ['an unknown model', ['info', '--model', 'lenet'], /^alexnet: unknown model 'lenet' \(known: alexnet, /],
  ['an unknown option', ['info', '--model', 'alexnet', '--colour'], /unknown option '--colour'/],
  ['a missing dataset folder', ['train', '--data', '/nonexistent/fmnist', '--out', join(tmpdir(), 'never')], /^alexnet: dataset folder \/nonexistent\/fmnist does not exist$/],
  ['a missing checkpoint', ['eval', '--model', '/nonexistent/run.safetensors', '--data', '/tmp'], /^alexnet: cannot read checkpoint \/nonexistent\/run.safetensors: no such file$/],
  ['a zero batch', ['bench', '--model', 'alexnet', '--batch', '0'], /option '--batch <n>' argument '0' is invalid. must be a positive integer/],
  ['an unknown schedule', ['train', '--data', '/tmp', '--out', '/tmp/x', '--schedule', 'cosine'], /^alexnet: unknown schedule 'cosine'/],
];

for (const [what, args, message] of badInputs) {
  test(`${what} gets one clear line and exit code 1`, () => {
    const r = alexnet(...args);
    assert.equal(r.code, 1);
    assert.match(r.stderr.split('\n')[0]!, message);
  });
}
