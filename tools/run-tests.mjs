#!/usr/bin/env node
/**
 * `npm test`'s runner: every suite in dist/test/ under Node's test runner, with TMPDIR pointed at a
 * folder of its own that is removed afterwards, so the run folders, photo folders and stores the
 * suites make (and Chromium's and MPI's temporary files) do not pile up in /tmp run after run.
 * Arguments are passed to `node --test` (e.g. `--test-name-pattern=…`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const suites = join(import.meta.dirname, '..', 'dist', 'test');
const files = readdirSync(suites)
  .filter((name) => name.endsWith('.test.js'))
  .sort()
  .map((name) => join(suites, name));
const scratch = mkdtempSync(join(tmpdir(), 'alexnet-tests-'));
const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...process.argv.slice(2), ...files], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: scratch },
});
rmSync(scratch, { recursive: true, force: true });
process.exit(run.status ?? 1);
