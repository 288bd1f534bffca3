/** Runs the README's library example as written, importing the package by its own name. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ENVIRONMENT } from '../src/config.js';

const ROOT = join(import.meta.dirname, '..', '..');

test('the README example runs and gives a sane loss and gradient', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const example = /## Library example\s+```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example, 'README.md has a "Library example" js block');
  const file = join(ROOT, 'dist', 'readme-example.mjs');
  writeFileSync(file, example);
  const output = execFileSync(process.execPath, [file], { encoding: 'utf8' });
  assert.match(output, /^conv2\s+conv2d\s+\[4, 16, 13, 13\]\s+592\s/m);
  const [, loss, gradient] = /loss (\S+), \|dL\/dconv1.weight\|₁ = (\S+)/.exec(output) ?? [];
  assert.ok(Math.abs(Number(loss) - Math.log(10)) < 0.5, `loss ${loss} should be near ln 10 for an untrained 10-class net`);
  assert.ok(Number(gradient) > 0, 'the gradient reaches conv1');
});

test("every environment variable is read in src/config.ts alone, and README's table lists each with its meaning", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const [name, meaning] of Object.entries(ENVIRONMENT)) assert.ok(readme.includes(`| \`${name}\` | ${meaning} |`), `README: ${name}`);
  const sources = execFileSync('grep', ['-rln', 'process\\.env', join(ROOT, 'src')], { encoding: 'utf8' })
    .trim()
    .split('\n');
  assert.deepEqual(
    sources.map((path) => path.slice(ROOT.length + 1)),
    ['src/config.ts'],
  );
});
