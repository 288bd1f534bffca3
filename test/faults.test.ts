/**
 * Fault injection: signals at random steps and kills inside checkpoint writes must lose nothing (a
 * resumed run ends with the same files, byte for byte, as one never stopped), and damaged files of
 * every format the library reads must give a clear error or a correct load — never a crash, a
 * hang or a silent wrong value.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadDataset } from '../src/data/dataset.js';
import { parseIdx } from '../src/data/idx.js';
import { readCheckpoint, writeCheckpoint } from '../src/net/checkpoint.js';
import { parseNpy, serializeNpy } from '../src/io/npy.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { Net, ReferenceBackend } from '../src/index.js';
import { exportOnnx } from '../src/onnx/export.js';
import { importOnnx } from '../src/onnx/import.js';
import { decodeModel, encodeModel, type ModelProto } from '../src/onnx/proto.js';
import { Philox } from '../src/random.js';
import { sizeOf } from '../src/tensor.js';
import { columnDataset, idx } from './helpers.js';
import { tinyDropout as tiny } from './specs.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process; `started` resolves once training has begun. */
function alexnet(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
  let stdout = '',
    stderr = '';
  let markStarted: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    if (stdout.includes('training ')) markStarted();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<Outcome>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, started, done };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const data = columnDataset({ train: 6000, test: 64, classes: 4, seed: 11, spec: tiny });
const trainArgs = (out: string) => [
  'train',
  '--data',
  data,
  '--out',
  out,
  '--model',
  join(data, 'tiny.json'),
  '--epochs',
  '2',
  '--batch',
  '4',
  '--val',
  '200',
  '--threads',
  '1',
];

/** The run never stopped, and how long its training took. */
const reference = (async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'faults-')), 'run');
  const t0 = performance.now();
  const run = alexnet(trainArgs(out));
  await run.started;
  const t1 = performance.now();
  const outcome = await run.done;
  assert.equal(outcome.code, 0, outcome.stderr);
  return { out, trainingMs: performance.now() - t1, totalMs: performance.now() - t0 };
})();

/** A resumed run's files equal the uninterrupted run's: checkpoints byte for byte, each epoch's
 * metrics once, with the same values (only the timings differ), and nothing temporary left. */
async function assertSameRun(out: string, why: string): Promise<void> {
  const { out: expected } = await reference;
  for (const file of ['last.safetensors', 'best.safetensors'])
    assert.ok(readFileSync(join(out, file)).equals(readFileSync(join(expected, file))), `${file} differs (${why})`);
  const metrics = (dir: string) =>
    readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => ({ ...JSON.parse(l), imagesPerSecond: 0, wallSeconds: 0 }) as Record<string, unknown>);
  assert.deepEqual(metrics(out), metrics(expected), `metrics.jsonl (${why})`);
  assert.deepEqual(
    readdirSync(out).filter((f) => f.includes('.tmp-') || f.endsWith('.lock')),
    [],
    `leftovers (${why})`,
  );
}

async function resume(out: string): Promise<void> {
  const outcome = await alexnet([...trainArgs(out), '--resume']).done;
  assert.equal(outcome.code, 0, outcome.stderr);
}

for (const [signal, status] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`${signal} at a random step stops, saves, exits ${status}, and the resumed run equals an uninterrupted one`, async () => {
    const { trainingMs } = await reference;
    for (let attempt = 0; attempt < 3; attempt++) {
      const out = join(mkdtempSync(join(tmpdir(), 'faults-')), 'run');
      const run = alexnet(trainArgs(out));
      await run.started;
      const delay = (Math.random() * 0.8 * trainingMs) / 2 ** attempt;
      await sleep(delay);
      run.child.kill(signal);
      if (signal === 'SIGINT') run.child.kill(signal); // a second Ctrl-C changes nothing
      const outcome = await run.done;
      if (outcome.code === 0) continue; // finished before the signal: try earlier
      const why = `${signal} after ${delay.toFixed(0)} ms`;
      if (/the run is complete/.test(outcome.stdout)) {
        // the signal came during the test evaluation
        assert.equal(outcome.code, status, why);
        await assertSameRun(out, why);
        return;
      }
      assert.equal(outcome.code, status, `${why}: ${outcome.stderr}`);
      assert.match(outcome.stdout, /interrupted: saved .*last.safetensors; continue with: alexnet train .* --resume/);
      assert.ok(existsSync(join(out, 'last.safetensors')), why);
      await resume(out);
      await assertSameRun(out, why);
      return;
    }
    assert.fail('the run always finished before the signal');
  });
}

test('SIGKILL inside checkpoint writes leaves a loadable last checkpoint (or none), and resuming loses nothing', async () => {
  // Writes: epoch 1's last, its copy to best; epoch 2's last, and its copy to best if better.
  for (const write of [1, 2, 3, 4]) {
    const out = join(mkdtempSync(join(tmpdir(), 'faults-')), 'run');
    const outcome = await alexnet(trainArgs(out), { ALEXNET_FAULT_KILL_IN_WRITE: String(write) }).done;
    if (outcome.code === 0) continue; // epoch 2 was not a new best: three writes only
    const why = `killed in write ${write}`;
    assert.equal(outcome.signal, 'SIGKILL', why);
    assert.ok(
      readdirSync(out).some((f) => f.includes('.tmp-')),
      `${why}: the cut write left its temporary file`,
    );
    if (write === 1) {
      assert.ok(!existsSync(join(out, 'last.safetensors')), why);
      assert.equal((await alexnet(trainArgs(out)).done).code, 0, `${why}: nothing to resume, a plain start works`);
    } else {
      assert.equal(readCheckpoint(join(out, 'last.safetensors')).spec.name, 'tiny', why);
      const plain = await alexnet(trainArgs(out)).done;
      assert.match(plain.stderr, /already holds a training run .*: continue it with --resume, or start over with --force/, why);
      await resume(out);
    }
    await assertSameRun(out, why);
  }
});

test('SIGKILL at a random moment, then resume (or a fresh start if no checkpoint was written yet)', async () => {
  const { totalMs } = await reference;
  const out = join(mkdtempSync(join(tmpdir(), 'faults-')), 'run');
  const run = alexnet(trainArgs(out));
  const delay = Math.random() * 0.9 * totalMs;
  await sleep(delay);
  run.child.kill('SIGKILL');
  await run.done;
  if (existsSync(join(out, 'last.safetensors'))) await resume(out);
  else assert.equal((await alexnet(trainArgs(out)).done).code, 0);
  await assertSameRun(out, `SIGKILL after ${delay.toFixed(0)} ms`);
});

test('train refuses an existing run without --resume or --force, an unwritable folder before training, and leaves no empty folder', async () => {
  const { out } = await reference;
  const before = readFileSync(join(out, 'last.safetensors'));
  const refused = await alexnet(trainArgs(out)).done;
  assert.equal(refused.code, 1);
  assert.ok(readFileSync(join(out, 'last.safetensors')).equals(before));
  const parent = mkdtempSync(join(tmpdir(), 'faults-'));
  writeFileSync(join(parent, 'file'), '');
  const blocked = await alexnet(trainArgs(join(parent, 'file', 'run'))).done;
  assert.match(blocked.stderr.trim(), /^alexnet: cannot create run folder .*file\/run: a part of the path is not a folder$/);
  const badData = await alexnet([...trainArgs(join(parent, 'never')), '--classes', '3']).done; // labels 0–3
  assert.match(badData.stderr.trim(), /^alexnet: .*train-labels-idx1-ubyte: record 3 has label 3, beyond the 3 classes \(labels 0–2\)$/);
  assert.equal(existsSync(join(parent, 'never')), false);
  const diverged = await alexnet([...trainArgs(join(parent, 'nan')), '--lr', '1000']).done;
  assert.match(diverged.stderr.trim(), /^alexnet: the loss became (NaN|Infinity|[\d.e+]+, over [\d.e+]+) at .*the run diverged.*$/);
  assert.equal(existsSync(join(parent, 'nan')), false, 'a run that failed before its first checkpoint leaves no folder');
});

// ---- fuzzing the readers ----

const BUILTIN = [TypeError, RangeError, SyntaxError, ReferenceError];

/** Either `read` succeeds and `verify` accepts what it read, or it throws one clear line naming the source. */
function assertCleanOutcome(what: string, source: string, read: () => unknown, verify: (value: never) => void): 'loaded' | 'refused' {
  let value: unknown;
  try {
    value = read();
  } catch (error) {
    assert.ok(
      error instanceof Error && !BUILTIN.some((kind) => error instanceof kind),
      `${what}: not a clear error: ${(error as Error).stack}`,
    );
    assert.ok(error.message.includes(source), `${what}: the error does not name ${source}: ${error.message}`);
    assert.ok(!error.message.includes('\n'), `${what}: more than one line: ${error.message}`);
    return 'refused';
  }
  verify(value as never);
  return 'loaded';
}

/** Truncations, bit flips, runs of 0xFF (huge sizes) and of 0x80 (negative ones), seeded. */
function* mutations(bytes: Uint8Array, count: number, seed: number, hot = 64): Generator<[string, Uint8Array]> {
  const rng = new Philox(seed);
  for (let i = 0; i < count; i++) {
    const copy = bytes.slice();
    const at = () => (rng.nextFloat() < 0.7 ? rng.nextInt(Math.min(hot, copy.length)) : rng.nextInt(copy.length));
    switch (i % 4) {
      case 0: {
        const length = rng.nextInt(bytes.length);
        yield [`truncated to ${length}`, bytes.slice(0, length)];
        break;
      }
      case 1: {
        const flips = 1 + rng.nextInt(4),
          where = Array.from({ length: flips }, at);
        for (const w of where) copy[w] ^= 1 << rng.nextInt(8);
        yield [`bits flipped at ${where.join(',')}`, copy];
        break;
      }
      default: {
        const w = at(),
          fill = i % 4 === 2 ? 0xff : 0x80;
        copy.fill(fill, w, w + 4);
        yield [`0x${fill.toString(16)} × 4 at ${w}`, copy];
      }
    }
  }
}

const source = (name: string) => `/fuzz/${name}`;

test('fuzz: damaged IDX files are refused or read consistently', () => {
  const image = idx(
    [3, 4, 5],
    Array.from({ length: 60 }, (_, i) => i),
  );
  let refused = 0;
  for (const [what, bytes] of mutations(image, 400, 1, 20)) {
    const outcome = assertCleanOutcome(
      `IDX ${what}`,
      source('x.idx'),
      () => parseIdx(bytes, source('x.idx')),
      (r: ReturnType<typeof parseIdx>) => {
        assert.equal(r.data.length, sizeOf(r.dims), `IDX ${what}: ${r.dims.join('×')} with ${r.data.length} values`);
      },
    );
    if (outcome === 'refused') refused++;
  }
  assert.ok(refused > 100, `only ${refused} of 400 damaged files refused`);
});

test('fuzz: damaged CIFAR batches are refused or read with every label in range', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-cifar-'));
  const batch = Uint8Array.from({ length: 3 * 3073 }, (_, i) => (i % 3073 === 0 ? (i / 3073) * 3 : i % 251));
  writeFileSync(join(dir, 'test_batch.bin'), batch);
  for (const [what, bytes] of mutations(batch, 60, 2, 3073 * 3)) {
    writeFileSync(join(dir, 'data_batch_1.bin'), bytes);
    assertCleanOutcome(
      `CIFAR ${what}`,
      dir,
      () => loadDataset(dir),
      (r: ReturnType<typeof loadDataset>) => {
        assert.equal(r.train.pixels.length, 3072 * r.train.labels.length);
        assert.ok(
          r.train.labels.every((l) => l < 10),
          `CIFAR ${what}: a label beyond 10 classes`,
        );
      },
    );
  }
});

test('fuzz: damaged .npy files are refused or read consistently', () => {
  const npy = serializeNpy([2, 3], [1, 2, 3, 4, 5, 6]);
  for (const [what, bytes] of mutations(npy, 400, 3, 80)) {
    assertCleanOutcome(
      `npy ${what}`,
      source('x.npy'),
      () => parseNpy(bytes, source('x.npy')),
      (r: ReturnType<typeof parseNpy>) => {
        assert.ok(
          r.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
          `npy ${what}: shape ${r.shape}`,
        );
        assert.equal(r.data.length, sizeOf(r.shape), `npy ${what}`);
      },
    );
  }
});

/** A safetensors file's tensors as its header says, decoded independently of the parser. */
function independentTensors(bytes: Uint8Array): Record<string, number[]> {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const body = bytes.slice(8 + length);
  const out: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    assert.equal(t.dtype, 'F32', 'the fuzzed files hold F32 tensors only');
    out[name] = Array.from(new Float32Array(body.buffer.slice(t.data_offsets[0], t.data_offsets[1])));
  }
  return out;
}

/** A safetensors header as JSON, for editing. */
type Header = Record<string, { [field: string]: unknown }>;

function withHeader(bytes: Uint8Array, edit: (header: Header) => void): Uint8Array {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + length), 8 + json.length);
  return out;
}

test('fuzz: damaged safetensors headers are refused or load exactly the bytes they name', () => {
  const good = serializeSafetensors(
    { a: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, b: { shape: [4], data: [7, 8, 9, 10] } },
    { note: 'x' },
  );
  const edits: [string, (h: Header) => void][] = [
    [
      'null header',
      (h) => {
        for (const k of Object.keys(h)) delete h[k];
        Object.assign(h, { a: null });
      },
    ],
    [
      'negative offsets',
      (h) => {
        h.a.data_offsets = [-8, 16];
      },
    ],
    [
      'swapped offsets',
      (h) => {
        h.a.data_offsets = [24, 0];
      },
    ],
    [
      'overlapping tensors',
      (h) => {
        h.b.data_offsets = [8, 24];
      },
    ],
    [
      'a hole between tensors',
      (h) => {
        h.a.shape = [5];
        h.a.data_offsets = [0, 20];
      },
    ],
    [
      'fractional offsets',
      (h) => {
        h.a.data_offsets = [0.5, 24.5];
      },
    ],
    [
      'a negative dimension',
      (h) => {
        h.a.shape = [-2, -3];
      },
    ],
    [
      'a huge dimension',
      (h) => {
        h.a.shape = [2 ** 40, 2 ** 40];
      },
    ],
    [
      'a string dimension',
      (h) => {
        h.a.shape = ['2', 3];
      },
    ],
    [
      'an unknown dtype',
      (h) => {
        h.a.dtype = 'Q4';
      },
    ],
    [
      'no offsets',
      (h) => {
        delete h.b.data_offsets;
      },
    ],
    [
      'metadata not strings',
      (h) => {
        h.__metadata__ = { note: 5 };
      },
    ],
    [
      'an array header',
      (h) => {
        Object.assign(h, { a: [1, 2] });
      },
    ],
  ];
  for (const [what, edit] of edits) {
    const outcome = assertCleanOutcome(
      what,
      source('x.safetensors'),
      () => parseSafetensors(withHeader(good, edit), source('x.safetensors')),
      () => {},
    );
    assert.equal(outcome, 'refused', `${what} was accepted`);
  }
  for (const [what, bytes] of mutations(good, 600, 4, 160)) {
    assertCleanOutcome(
      `safetensors ${what}`,
      source('x.safetensors'),
      () => parseSafetensors(bytes, source('x.safetensors')),
      (r: ReturnType<typeof parseSafetensors>) => {
        const expected = independentTensors(bytes);
        assert.deepEqual(Object.keys(r.tensors).sort(), Object.keys(expected).sort());
        for (const [name, t] of Object.entries(r.tensors)) {
          assert.equal(t.data.length, sizeOf(t.shape));
          assert.deepEqual(Array.from(t.data), expected[name], `safetensors ${what}: tensor ${name}`);
        }
      },
    );
  }
});

test('fuzz: damaged checkpoints are refused or load a net of the right shapes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-ckpt-'));
  const net = Net.build(tiny, { backend: new ReferenceBackend(), batch: 1, seed: 2 });
  const params = await net.readParams();
  const path = join(dir, 'c.safetensors');
  writeCheckpoint(path, {
    spec: tiny,
    params: Object.fromEntries(net.params.map((p) => [p.name, { shape: p.shape, data: params[p.name]! }])),
    state: { options: { mean: 0.5, std: 0.2 } },
  });
  const good = readFileSync(path);
  const specEdits: [string, (h: Header) => void][] = [
    [
      'a spec that is not JSON',
      (h) => {
        h.__metadata__.spec = '{"inputs":';
      },
    ],
    [
      'a spec with a wider layer',
      (h) => {
        h.__metadata__.spec = JSON.stringify({
          ...tiny,
          layers: tiny.layers.map((l) => (l.name === 'out' ? { ...l, outFeatures: 5 } : l)),
        });
      },
    ],
    [
      'a spec without layers',
      (h) => {
        h.__metadata__.spec = '{"inputs": {"data": [1]}}';
      },
    ],
    [
      'a state that is not an object',
      (h) => {
        h.__metadata__.state = '[1]';
      },
    ],
    [
      'a foreign tensor',
      (h) => {
        h['extra.weight'] = h['out.bias']!;
        delete h['out.bias'];
      },
    ],
  ];
  for (const [what, edit] of specEdits) {
    writeFileSync(path, withHeader(good, edit));
    assert.equal(
      assertCleanOutcome(
        what,
        path,
        () => readCheckpoint(path),
        () => {},
      ),
      'refused',
      `${what} was accepted`,
    );
  }
  for (const [what, bytes] of mutations(good, 200, 5, 400)) {
    writeFileSync(path, bytes);
    assertCleanOutcome(
      `checkpoint ${what}`,
      path,
      () => readCheckpoint(path),
      (c: ReturnType<typeof readCheckpoint>) => {
        const loaded = Net.build(c.spec, { backend: new ReferenceBackend(), batch: 1 });
        loaded.loadTensors(c.params);
      },
    );
  }
});

test('fuzz: damaged ONNX models are refused or import a net that builds', async () => {
  const net = Net.build(tiny, { backend: new ReferenceBackend(), batch: 1, seed: 3 });
  const model = await exportOnnx(net);
  const edits: [string, (m: ModelProto) => void][] = [
    [
      'no graph',
      (m) => {
        delete m.graph;
      },
    ],
    [
      'negative dimensions',
      (m) => {
        m.graph!.initializer![0]!.dims = [-2, 4];
      },
    ],
    [
      'huge dimensions',
      (m) => {
        m.graph!.initializer![0]!.dims = [2 ** 40, 2 ** 20];
      },
    ],
    [
      'short raw data',
      (m) => {
        const t = m.graph!.initializer![0]!;
        t.rawData = t.rawData!.subarray(0, 8);
      },
    ],
    [
      'no outputs',
      (m) => {
        m.graph!.output = [];
      },
    ],
    [
      'an input without a type',
      (m) => {
        delete m.graph!.input![0]!.type;
      },
    ],
    [
      'an attribute of the wrong type',
      (m) => {
        const a = m.graph!.node![0]!.attribute![0]!;
        Object.assign(a, { ints: undefined, type: 1, f: 2.5 });
      },
    ],
    [
      'a kernel_shape the weight contradicts',
      (m) => {
        for (const a of m.graph!.node![0]!.attribute!) if (a.name === 'kernel_shape') a.ints = [5, 5];
      },
    ],
    [
      'a negative input dimension',
      (m) => {
        m.graph!.input![0]!.type!.tensorType!.shape!.dim![1] = { dimValue: -3 };
      },
    ],
  ];
  for (const [what, edit] of edits) {
    const m = decodeModel(model);
    edit(m);
    const bytes = encodeModel(m);
    const outcome = assertCleanOutcome(
      what,
      source('m.onnx'),
      () => importOnnx(decodeModel(bytes, source('m.onnx')), { source: source('m.onnx') }),
      () => {},
    );
    assert.equal(outcome, 'refused', `${what} was accepted`);
  }
  let loaded = 0;
  for (const [what, bytes] of mutations(model, 400, 6, model.length)) {
    const outcome = assertCleanOutcome(
      `ONNX ${what}`,
      source('m.onnx'),
      () => importOnnx(decodeModel(bytes, source('m.onnx')), { source: source('m.onnx') }),
      (m: ReturnType<typeof importOnnx>) => {
        const rebuilt = Net.build(m.spec, { backend: new ReferenceBackend(), batch: m.batch });
        rebuilt.loadParams(m.params);
      },
    );
    if (outcome === 'loaded') loaded++;
  }
  assert.ok(loaded > 0, 'some bit flips land in weights and load');
});
