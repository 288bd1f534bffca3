/**
 * Data-parallel training over MPI (`train --distributed`, src/train/distributed.ts) under Open MPI's
 * mpirun on this machine: 2 and 3 ranks make the steps one process makes with the same batch
 * (dropout, crops and flips included), a run resumes on another number of ranks, the CLI trains
 * and scores a run once, and faults end the job cleanly with the last checkpoint intact.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Net, ReferenceBackend } from '../src/index.js';
import { readCheckpoint } from '../src/net/checkpoint.js';
import { RUN_FILES } from '../src/train/run-folder.js';
import { type Collective, DataParallel } from '../src/train/distributed.js';
import { prepareStore } from '../src/data/store.js';
import { columnDataset, photoFolder } from './helpers.js';
import { rgb32, tinyColumns } from './specs.js';

const DIST = join(import.meta.dirname, '..');
const CLI = join(DIST, 'src', 'cli', 'main.js');
const missing = spawnSync('mpirun', ['--version']).status === 0 ? false : "no mpirun (Debian's openmpi-bin)";
const MPIRUN = ['--allow-run-as-root', '--oversubscribe'];

const data = columnDataset({ train: 240, test: 60, classes: 4, seed: 8, spec: tinyColumns });

/** Trains the tiny two-column net (dropout, crops, flips) for `steps` steps of a batch of 12 into
 * `out`, in this process or as one rank of an MPI job. */
const RANK_SCRIPT = `
import { launchedByMpi, loadMpi } from ${JSON.stringify(join(DIST, 'src', 'backend', 'native', 'mpi.js'))};
import { createBackend } from ${JSON.stringify(join(DIST, 'src', 'backend', 'choose.js'))};
import { openTrainingData } from ${JSON.stringify(join(DIST, 'src', 'train', 'data.js'))};
import { train } from ${JSON.stringify(join(DIST, 'src', 'train', 'trainer.js'))};
const o = JSON.parse(process.argv[2]);
const mpi = launchedByMpi() ? loadMpi() : undefined;
if (typeof mpi === 'string') throw new Error(mpi);
const data = await openTrainingData(o.data, {
  seed: 1, cropPad: 1, flip: true, pca: o.pca ?? 0, val: 36, inputSize: o.inputSize, loaders: o.loaders,
});
const { backend } = await createBackend(o.backend, 1);
await train({
  spec: o.spec, backend, train: data.train, validation: data.validation, outDir: o.out, epochs: 3, batch: 12,
  lr: o.lr ?? 0.05, momentum: 0.9, weightDecay: 0.0005, schedule: { kind: 'constant' }, seed: 3, init: 'kaiming',
  augment: data.augment, mean: data.mean, std: data.std, resume: o.resume, stopAfterSteps: o.steps,
  ...(mpi ? { collective: mpi } : {}),
});
await backend.dispose();
await data.close();
mpi?.finalize();
`;
const script = join(mkdtempSync(join(tmpdir(), 'ranks-')), 'rank.mjs');
writeFileSync(script, RANK_SCRIPT);

interface StepOptions {
  steps: number;
  resume?: boolean;
  backend?: string;
  mpich?: boolean;
  /** Another dataset and net (a store: its crop size, colour noise and loader threads). */
  data?: string;
  spec?: object;
  inputSize?: number;
  pca?: number;
  loaders?: number;
  lr?: number;
}

function trainSteps(ranks: number, out: string, o: StepOptions) {
  const args = [script, JSON.stringify({ data, out, spec: tinyColumns, backend: o.backend ?? 'wasm', ...o })];
  const launcher = o.mpich ? ['mpiexec.mpich', '-n', String(ranks)] : ['mpirun', ...MPIRUN, '-np', String(ranks)];
  const run =
    ranks === 0
      ? spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 })
      : spawnSync(launcher[0]!, [...launcher.slice(1), process.execPath, ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  return readCheckpoint(join(out, RUN_FILES.last));
}

function assertSameWeights(a: ReturnType<typeof readCheckpoint>, b: ReturnType<typeof readCheckpoint>, what: string) {
  assert.equal(a.state.step, b.state.step, `${what}: step`);
  for (const [name, t] of Object.entries(a.params)) {
    const other = b.params[name]!.data;
    let worst = 0;
    Array.from(t.data).forEach((v, i) => (worst = Math.max(worst, Math.abs(v - other[i]!) / (1e-3 + Math.abs(v)))));
    assert.ok(worst < 2e-4, `${what}: ${name} differs by ${worst} (relative)`);
  }
  for (const [name, t] of Object.entries(a.velocities ?? {}))
    Array.from(t.data).forEach((v, i) =>
      assert.ok(Math.abs(v - b.velocities![name]!.data[i]!) < 1e-5, `${what}: momentum of ${name}[${i}]`),
    );
}

const dir = () => mkdtempSync(join(tmpdir(), 'distributed-'));

test('2 and 3 ranks make the steps one process makes with the same batch; a run resumes on other rank counts', { skip: missing }, () => {
  const one = trainSteps(0, join(dir(), 'run'), { steps: 25 });
  assert.equal(one.state.step, 25);
  for (const ranks of [1, 2, 3]) assertSameWeights(one, trainSteps(ranks, join(dir(), 'run'), { steps: 25 }), `${ranks} ranks`);
  // the steps cross an epoch (17 per epoch): validation split over the ranks, the weights compared
  const out = join(dir(), 'run');
  trainSteps(2, out, { steps: 10 });
  trainSteps(3, out, { steps: 20, resume: true });
  assertSameWeights(one, trainSteps(0, out, { steps: 25, resume: true }), '2 ranks, then 3, then one process');
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(metrics.filter((line) => !line.includes('partial')).length, 1, 'one finished epoch, written once');
});

test(
  "MPICH's ABI (Debian's mpich, mpiexec): 2 ranks make one process's steps",
  { skip: spawnSync('mpiexec.mpich', ['--version']).status !== 0 && "no mpiexec.mpich (Debian's mpich)" },
  () => {
    const one = trainSteps(0, join(dir(), 'run'), { steps: 8 });
    assertSameWeights(one, trainSteps(2, join(dir(), 'run'), { steps: 8, mpich: true }), 'MPICH, 2 ranks');
  },
);

test("on a photo store with loader threads (crops, flips, colour noise), 2 ranks make one process's steps", { skip: missing }, async () => {
  const store = join(dir(), 'store');
  await prepareStore(await photoFolder({ train: 24, val: 2 }), store, { size: 40 });
  const o = { data: store, spec: rgb32(4, 8), inputSize: 32, pca: 0.1, loaders: 1, lr: 0.005 };
  const one = trainSteps(0, join(dir(), 'run'), { steps: 12, ...o, loaders: 0 });
  assertSameWeights(one, trainSteps(2, join(dir(), 'run'), { steps: 12, ...o }), 'a store, 2 ranks with a loader thread each');
});

test('the reference backend (no shared memory view needed) sums through a copy and gives the same steps', { skip: missing }, () => {
  const one = trainSteps(0, join(dir(), 'run'), { steps: 6, backend: 'reference' });
  assertSameWeights(one, trainSteps(2, join(dir(), 'run'), { steps: 6, backend: 'reference' }), 'reference, 2 ranks');
});

test('the weights of a rank that differ from the leader are an error naming the rank', async () => {
  const net = Net.build(tinyColumns, { backend: new ReferenceBackend(), batch: 2, seed: 1 });
  let leaderHash = new Float64Array(2);
  const world = (rank: number): Collective => ({
    rank,
    size: 3,
    allreduceSum: () => {}, // the other ranks add nothing
    broadcast: (values) => {
      if (rank === 0) leaderHash = Float64Array.from(values);
      else values.set(leaderHash.subarray(0, values.length));
    },
  });
  await new DataParallel(world(0), net).checkSameWeights('after epoch 1');
  await new DataParallel(world(2), net).checkSameWeights('after epoch 1'); // the same weights
  const w = net.params[0]!.value;
  const changed = Float32Array.from(await w.read());
  changed[3] = changed[3]! + 1e-6;
  w.write(changed);
  await assert.rejects(
    new DataParallel(world(2), net).checkSameWeights('after epoch 1'),
    /^Error: after epoch 1, the weights of rank 2 differ from rank 0's: every rank must run the same version on the same data/,
  );
});

/** Runs the CLI under mpirun (or alone, ranks 0), returning its exit code and output. */
function cli(ranks: number, args: string[], timeout = 120_000) {
  const command =
    ranks === 0 ? [process.execPath, [CLI, ...args]] : ['mpirun', [...MPIRUN, '-np', String(ranks), process.execPath, CLI, ...args]];
  return spawnSync(command[0] as string, command[1] as string[], { encoding: 'utf8', timeout });
}

/** `alexnet train`'s arguments for `data` into `out`, and more. */
const trainArgs = (data: string, out: string, ...more: string[]) => ['train', '--data', data, '--out', out, ...more];

/** The CLI as two ranks told different things (mpirun's MPMD form): as if their hosts differed. */
function twoHosts(rank0: string[], rank1: string[]) {
  const rank = (args: string[]) => ['-np', '1', process.execPath, CLI, ...args];
  return spawnSync('mpirun', [...MPIRUN, ...rank(rank0), ':', ...rank(rank1)], { encoding: 'utf8', timeout: 120_000 });
}

test('alexnet train --distributed: one run, printed and written once; misuse gets one line', { skip: missing }, () => {
  const out = join(dir(), 'run');
  const spec = join(data, 'tiny.json');
  const run = cli(2, trainArgs(data, out, '--model', spec, '--epochs', '4', '--batch', '12', '--lr', '0.05', '--no-flip', '--distributed'));
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /batch 12 over 2 processes/);
  assert.equal(run.stdout.match(/^epoch \d+:/gm)?.length, 4, run.stdout);
  assert.equal(run.stdout.match(/^test accuracy/gm)?.length, 1, run.stdout);
  assert.ok(existsSync(join(out, RUN_FILES.best)) && existsSync(join(out, RUN_FILES.curves)));
  const accuracy = Number(/^test accuracy ([\d.]+)%/m.exec(run.stdout)![1]);
  assert.ok(accuracy > 60, `the column task is learnt: ${accuracy} %\n${run.stdout}`);
  // resumed with the run folder on rank 0's host alone (rank 1 is told of a folder that does not exist)
  const more = (out: string) => trainArgs(data, out, '--epochs', '5', '--override', 'epochs', '--resume', '--distributed');
  const continued = twoHosts(more(out), more(join(dir(), 'absent')));
  assert.equal(continued.status, 0, continued.stderr);
  assert.match(continued.stdout, /^resuming at epoch 5, step 72; epochs 4 → 5$/m);
  assert.equal(readCheckpoint(join(out, RUN_FILES.last)).state.epoch, 5);
  // fine-tuned from that run with its weights on rank 0's host alone
  const tune = (from: string) => trainArgs(data, join(dir(), 'tuned'), '--init-from', from, '--epochs', '1', '--no-flip', '--distributed');
  const fineTuned = twoHosts(tune(out), tune(join(dir(), 'absent.safetensors')));
  assert.equal(fineTuned.status, 0, fineTuned.stderr);
  const firstLoss = Number(/^epoch 1: loss ([\d.]+)/m.exec(fineTuned.stdout)?.[1]);
  assert.ok(firstLoss < 0.5, `it starts from the trained weights: loss ${firstLoss}\n${fineTuned.stdout}`);

  const elsewhere = () => join(dir(), 'run');
  const alone = cli(0, trainArgs(data, elsewhere(), '--model', spec, '--distributed'));
  assert.equal(alone.status, 1);
  assert.match(alone.stderr, /^alexnet: --distributed: this process was not started by an MPI launcher \(run it under mpirun/);
  const without = cli(2, trainArgs(data, elsewhere(), '--model', spec, '--epochs', '1'));
  assert.notEqual(without.status, 0);
  assert.match(without.stderr, /alexnet \(rank [01] of 2\): started by an MPI launcher as one of 2 processes, without --distributed/);
  const odd = cli(2, trainArgs(data, elsewhere(), '--model', spec, '--batch', '13', '--distributed'));
  assert.notEqual(odd.status, 0);
  assert.match(odd.stderr, /batch size 13 does not split over 2 processes: give a multiple of 2/);
  // one rank alone fails (its host lacks the data): it says so, and the job ends within seconds
  const run0 = elsewhere();
  const start = performance.now();
  const lopsided = twoHosts(
    trainArgs(data, run0, '--model', spec, '--distributed'),
    trainArgs(join(dir(), 'no-data'), run0, '--model', spec, '--distributed'),
  );
  assert.notEqual(lopsided.status, 0);
  assert.ok((performance.now() - start) / 1000 < 30, 'no hang');
  assert.match(lopsided.stderr, /^alexnet \(rank 1 of 2\): .*no-data/m);
});

/** Starts the CLI under mpirun in the background; resolves with its exit code and output. */
function background(args: string[], env: Record<string, string> = {}) {
  const child = spawn('mpirun', [...MPIRUN, '-np', '2', process.execPath, CLI, ...args], { env: { ...process.env, ...env } });
  let stdout = '',
    stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }>((resolve) => {
    const start = performance.now();
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - start) / 1000 }));
  });
  return { child, done, output: () => stdout };
}

async function until(condition: () => boolean, what: string, seconds = 60) {
  for (const end = Date.now() + seconds * 1000; !condition();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The PIDs of the ranks mpirun started (children of its PID running the CLI). */
function ranksOf(mpirun: number): number[] {
  const ps = spawnSync('ps', ['-o', 'pid=,ppid=,args=', '-e'], { encoding: 'utf8' }).stdout;
  return ps
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, ppid, ...args]) => Number(ppid) === mpirun && args.join(' ').includes(CLI))
    .map(([pid]) => Number(pid));
}

const longRun = (out: string) =>
  trainArgs(data, out, '--model', join(data, 'tiny.json'), '--epochs', '100000', '--batch', '12', '--distributed');

/** Waits until these processes have ended (a job's ranks outlive mpirun by a moment). */
async function gone(pids: number[]) {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await until(() => !pids.some(alive), 'the ranks to end', 10);
}

test('a killed rank ends the job within seconds, the last checkpoint intact; the run resumes', { skip: missing }, async () => {
  const out = join(dir(), 'run');
  const job = background(longRun(out));
  await until(() => /^epoch 2:/m.test(job.output()), 'two epochs');
  const ranks = ranksOf(job.child.pid!).sort((a, b) => a - b);
  const killedAt = performance.now();
  process.kill(ranks[1]!, 'SIGKILL');
  const ended = await job.done;
  await gone(ranks);
  const seconds = (performance.now() - killedAt) / 1000;
  assert.notEqual(ended.code, 0);
  assert.ok(seconds < 10, `the job ended ${seconds.toFixed(1)} s after the kill`);
  const last = readCheckpoint(join(out, RUN_FILES.last));
  assert.ok((last.state.epoch as number) >= 2, 'a whole checkpoint of an epoch');
  const epochs = String((last.state.epoch as number) + 1);
  const resumed = cli(2, [...longRun(out).map((a) => (a === '100000' ? epochs : a)), '--resume', '--override', 'epochs']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`resuming at epoch ${epochs}`));
});

test(
  'Ctrl-C on mpirun ends the job at once; SIGUSR1 stops the ranks after one step, saved, and the run continues',
  { skip: missing },
  async () => {
    const out = join(dir(), 'run');
    const interrupted = background(longRun(out));
    await until(() => /^epoch 1:/m.test(interrupted.output()), 'an epoch');
    const ranks = ranksOf(interrupted.child.pid!);
    interrupted.child.kill('SIGINT');
    const ended = await interrupted.done;
    await gone(ranks);
    assert.notEqual(ended.code, 0);
    assert.ok(ended.seconds < 60);
    const kept = readCheckpoint(join(out, RUN_FILES.last)); // whole: written atomically
    const stopped = background([...longRun(out), '--resume']);
    await until(() => /^epoch \d+:/m.test(stopped.output()), 'an epoch of the resumed run');
    stopped.child.kill('SIGUSR1');
    const result = await stopped.done;
    assert.equal(result.code, 128 + 10, result.stderr);
    assert.match(
      result.stdout,
      /^interrupted: saved .*last\.safetensors; continue with: mpirun -np 2 alexnet train .* --resume --distributed$/m,
    );
    assert.equal(result.stderr.match(/SIGUSR1: stopping after this step/g)?.length, 1, 'said once, by rank 0');
    const last = readCheckpoint(join(out, RUN_FILES.last));
    assert.ok((last.state.step as number) > (kept.state.step as number));
    // within an epoch, a "partial" line of its metrics so far; at an epoch's end (a signal during
    // validation), that epoch's own line
    const within = (last.state.batchInEpoch as number) > 0;
    const line = readFileSync(join(out, RUN_FILES.metrics), 'utf8').trim().split('\n').at(-1)!;
    assert.match(line, new RegExp(`"step":${last.state.step as number},.*${within ? '"partial":true' : '"wallSeconds":[\\d.]+}$'}`));
  },
);
