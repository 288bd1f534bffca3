#!/usr/bin/env node
/**
 * `npm test`'s runner: every suite in dist/test/ under Node's test runner, with TMPDIR pointed at a
 * folder of its own that is removed afterwards, so the run folders, photo folders and stores the
 * suites make (and Chromium's and MPI's temporary files) do not pile up in /tmp run after run.
 * Arguments are passed to `node --test` before the suites (e.g. `--test-name-pattern=…`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

const suites = join(import.meta.dirname, '..', 'dist', 'test');
const files = readdirSync(suites)
  .filter((name) => name.endsWith('.test.js'))
  .sort()
  .map((name) => join(suites, name));
const scratch = mkdtempSync(join(tmpdir(), 'alexnet-tests-'));
const child = spawn(process.execPath, ['--test', '--test-reporter=spec', ...process.argv.slice(2), ...files], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: scratch },
});
// Ctrl-C (or a CI's timeout) stops the suites, and the folder still goes
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  rmSync(scratch, { recursive: true, force: true });
  process.exit(code ?? 128 + constants.signals[signal]);
});
