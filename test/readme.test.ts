/** Runs the README's library example as written, importing the package by its own name. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
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

test("the README's model-file example runs: a .pth classifies a photo, then fine-tunes on a folder", async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const example = /## Library: model files, photos, fine-tuning[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example, 'README.md has the model-file example');
  const dir = mkdtempSync(join(tmpdir(), 'readme-'));
  const photo = (colour: { r: number; g: number; b: number }, path: string) =>
    sharp({ create: { width: 260, height: 240, channels: 3, background: colour } })
      .jpeg()
      .toFile(path);
  await photo({ r: 200, g: 40, b: 40 }, join(dir, 'cat.jpg'));
  for (const [c, colour] of [
    { r: 200, g: 40, b: 40 },
    { r: 40, g: 40, b: 200 },
  ].entries()) {
    mkdirSync(join(dir, 'my-photos', `class${c}`), { recursive: true });
    for (let i = 0; i < 6; i++) await photo({ ...colour, g: 40 + 20 * i }, join(dir, 'my-photos', `class${c}`, `${i}.jpg`));
  }
  const file = join(ROOT, 'dist', 'readme-model-files.mjs');
  writeFileSync(file, example.replaceAll('alexnet-owt.pth', join(ROOT, 'test', 'fixtures', 'pytorch-files', 'small_alexnet.pth')));
  const output = execFileSync(process.execPath, [file], { encoding: 'utf8', cwd: dir });
  const [classified] = output.split('\n');
  assert.equal((JSON.parse(classified!) as { image: string; top: unknown[] }).top.length, 3);
  assert.match(output, /^recipe fine-tune: batch 2 \(a quarter of 11 training images at most\), lr 4\.0e-5 \(0\.001 × 2\/50\), /m);
  assert.match(output, /^loss \d+\.\d{3}, validation error [\d.]+$/m);
});
