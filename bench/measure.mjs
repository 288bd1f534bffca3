// Running one benchmark process (ours or a peer) and reading its result: the last line of its
// output that is a JSON object. Shared by run.mjs and gpu.mjs.
import { execFileSync } from 'node:child_process';

const OPTIONS = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30 * 60 * 1000 };

/** The command's stdout, or null if it failed. */
export function run(cmd, argv) {
  try {
    return execFileSync(cmd, argv, OPTIONS);
  } catch {
    return null;
  }
}

/** `{ label, ...result }`, or `{ label, error }` with our CLI's own one-line message when it gave one; `env` is added to ours. */
export function measure(label, cmd, argv, env = {}) {
  try {
    const out = execFileSync(cmd, argv, { ...OPTIONS, env: { ...process.env, ...env } });
    const line = out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    return { label, ...(line ? JSON.parse(line) : { error: 'no result' }) };
  } catch (error) {
    const said = String(error.stderr ?? '')
      .split('\n')
      .filter((l) => l.startsWith('alexnet:'))
      .pop();
    return { label, error: said ?? 'failed to run' };
  }
}
