/**
 * The MPI binding (src/backend/native/mpi.ts) under Open MPI's mpirun and MPICH's mpiexec (the
 * MPICH ABI): 3 ranks on this machine sum, take maxima and broadcast float32, float64 and int32
 * arrays in place, on ordinary arrays, on a shared wasm memory (no copy) and past the binding's
 * 2^20-value pieces, against the values each rank started with.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchedByMpi, loadMpi } from '../src/backend/native/mpi.js';

/** Each MPI's launcher, with the arguments that start 3 ranks on this machine, and the binding's name for it. */
const LAUNCHERS = [
  { flavour: 'Open MPI', command: 'mpirun.openmpi', args: ['--allow-run-as-root', '--oversubscribe', '-np', '3'], debian: 'openmpi-bin' },
  { flavour: 'MPICH', command: 'mpiexec.mpich', args: ['-n', '3'], debian: 'mpich' },
];
const installed = (command: string) => spawnSync(command, ['--version']).status === 0;

test('MPI outside a launcher: not launched, and loading it says how to launch', () => {
  assert.equal(launchedByMpi({}), false);
  assert.equal(launchedByMpi({ OMPI_COMM_WORLD_SIZE: '2' }), true);
  assert.equal(launchedByMpi({ PMI_RANK: '0' }), true);
  if (!launchedByMpi()) assert.match(String(loadMpi()), /^this process was not started by an MPI launcher \(run it under mpirun/);
});

for (const launcher of LAUNCHERS)
  test(
    `MPI under ${launcher.flavour}'s ${launcher.command}, 3 ranks: sums, maxima and broadcasts in place, on wasm memory too`,
    {
      skip: !installed(launcher.command) && `no ${launcher.command} (Debian's ${launcher.debian})`,
    },
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'mpi-'));
      const script = join(dir, 'rank.mjs');
      writeFileSync(
        script,
        `import { loadMpi } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'backend', 'native', 'mpi.js'))};
const mpi = loadMpi();
if (typeof mpi === 'string') { console.log(JSON.stringify({ error: mpi })); process.exit(0); }
const r = mpi.rank;
const f32 = Float32Array.of(r + 1, 0.5 * r, -r);
const f64 = Float64Array.of(1e-12 * (r + 1), r * r);
const i32 = Int32Array.of(r, 1 << 20);
mpi.allreduceSum(f32); mpi.allreduceSum(f64); mpi.allreduceSum(i32);
const max = Float32Array.of(r, -r); mpi.allreduceMax(max);
const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
const view = new Float32Array(memory.buffer, 4096, 5);
view.set([1, 2, 3, 4, 5].map((v) => v * (r + 1)));
mpi.allreduceSum(view);
const seen = [...new Float32Array(memory.buffer, 4096, 5)];
const root = Float64Array.of(r === 2 ? 42 : -1, r); mpi.broadcast(root, 2);
const big = new Float32Array((1 << 21) + 3).fill(r + 1); big[big.length - 1] = r; mpi.allreduceSum(big);
mpi.barrier();
const sums = { f32: [...f32], f64: [...f64], i32: [...i32], max: [...max], wasm: seen, root: [...root] };
console.log(JSON.stringify({ rank: r, size: mpi.size, flavour: mpi.flavour, ...sums, big: [big[0], big[1 << 20], big.at(-1)] }));
mpi.finalize();
`,
      );
      const run = spawnSync(launcher.command, [...launcher.args, process.execPath, script], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.equal(lines.length, 3);
      for (const line of lines) assert.equal(line.error, undefined, String(line.error));
      assert.deepEqual(lines.map((l) => l.rank).sort(), [0, 1, 2]);
      for (const l of lines) {
        assert.equal(l.size, 3);
        assert.equal(l.flavour, launcher.flavour);
        assert.deepEqual(l.big, [6, 6, 3]);
        assert.deepEqual(l.f32, [6, 1.5, -3]);
        assert.deepEqual(l.f64, [6e-12, 5]);
        assert.deepEqual(l.i32, [3, 3 << 20]);
        assert.deepEqual(l.max, [2, 0]);
        assert.deepEqual(l.wasm, [6, 12, 18, 24, 30]);
        assert.deepEqual(l.root, [42, 2]);
      }
    },
  );
