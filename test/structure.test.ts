/** The layering of src/ (tools/check-imports.mjs, run by `npm run lint`): it passes on the tree,
 * and fails on a planted upward import and a planted cycle, naming them. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const check = (src: string) => spawnSync(process.execPath, [join(ROOT, 'tools', 'check-imports.mjs'), src], { encoding: 'utf8' });

test('src/ has no import cycle and no upward import; a planted one of each fails the check, named', () => {
  const clean = check(join(ROOT, 'src'));
  assert.equal(clean.status, 0, clean.stderr);
  const src = mkdtempSync(join(tmpdir(), 'layers-'));
  cpSync(join(ROOT, 'src'), src, { recursive: true });
  appendFileSync(join(src, 'io', 'files.ts'), "\nexport type { RunOptions } from '../train/run-options.js';\n");
  appendFileSync(join(src, 'net', 'init.ts'), "\nexport type { Net as Again } from './net.js';\n");
  const planted = check(src);
  assert.equal(planted.status, 1);
  assert.match(planted.stderr, /^io\/files\.ts imports train\/run-options\.ts: train is above io$/m);
  assert.match(planted.stderr, /^cycle: net\/(net|init)\.ts → net\/(net|init)\.ts → net\/(net|init)\.ts$/m);
});
