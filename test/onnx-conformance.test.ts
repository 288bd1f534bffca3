/**
 * ONNX conformance: ONNX's own backend test cases (Debian's libonnx-testdata) for the operators the
 * engine implements, imported with src/onnx and run on the reference backend. Tolerances are
 * ONNX's backend-test defaults: rtol 1e-3, atol 1e-7.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Net } from '../src/index.js';
import { importOnnx } from '../src/onnx/import.js';
import { decodeModel, decodeTensor, tensorValues } from '../src/onnx/proto.js';
import { testBackends } from './backends.js';
import { assertClose } from './helpers.js';

const ROOT = '/usr/share/libonnx-testdata/data';
const SUITES = ['node', 'pytorch-converted', 'pytorch-operator'];
const SELECTED =
  /^(test_basic_conv_|test_conv_with_|test_lrn$|test_lrn_default$|test_maxpool_2d_|test_gemm_|test_relu$|test_softmax_|test_logsoftmax_|test_flatten_|test_concat_|test_dropout_default|test_Conv2d|test_MaxPool2d|test_Linear|test_ReLU$|test_Sigmoid$|test_Tanh$|test_Softmax$|test_LogSoftmax$)/;

/** Cases in the selection that are not run, and why. */
const SKIPPED: [RegExp, string][] = [
  [
    /_expanded$/,
    'the function-expanded form (ReduceMax, Exp, ReduceSum, Log, Sub, Div): ' +
      'elementwise and reduce ops outside the engine; the fused op of the same name runs',
  ],
  [/^test_maxpool_2d_uint8$/, 'uint8 tensors: the engine computes in float32 only'],
  [
    /^test_gemm_(all_attributes|transposeA)$/,
    'transA=1 transposes the activations; the engine maps Gemm to Linear (x·Wᵀ + b), which takes its input as it comes',
  ],
  [/^test_gemm_default_matrix_bias$/, 'C is a full M×N matrix; Linear adds one bias per output feature'],
  [/^test_dropout_default_mask(_ratio)?$/, 'asks for the optional mask output; the engine keeps dropout masks for backward only'],
];

/** Per backend: passed and failed cases; skipped cases are the same for every backend. */
const tally = { passed: new Map<string, number>(), failed: new Map<string, number>(), skipped: [] as string[] };
const bump = (counts: Map<string, number>, backend: string) => counts.set(backend, (counts.get(backend) ?? 0) + 1);

function readTensor(path: string) {
  return tensorValues(decodeTensor(readFileSync(path), path), path);
}

const cases = SUITES.flatMap((suite) =>
  (existsSync(join(ROOT, suite)) ? readdirSync(join(ROOT, suite)) : [])
    .filter((name) => SELECTED.test(name))
    .map((name) => ({ suite, name, dir: join(ROOT, suite, name) })),
);

test('libonnx-testdata is installed', () => {
  if (cases.length < 100) throw new Error(`found ${cases.length} ONNX cases under ${ROOT}; install Debian's libonnx-testdata`);
});

for (const { name: backendName, backend } of await testBackends())
  for (const { suite, name, dir } of cases) {
    const skip = SKIPPED.find(([pattern]) => pattern.test(name));
    if (skip) {
      if (backendName === 'reference') tally.skipped.push(`${suite}/${name}: ${skip[1]}`);
      test(`ONNX [${backendName}] ${suite}/${name}`, { skip: skip[1] }, () => {});
      continue;
    }
    test(`ONNX [${backendName}] ${suite}/${name}`, async () => {
      try {
        const model = decodeModel(readFileSync(join(dir, 'model.onnx')), name);
        const graphInputs = (model.graph!.input ?? [])
          .map((i) => i.name)
          .filter((n) => !(model.graph!.initializer ?? []).some((t) => t.name === n));
        const sets = readdirSync(dir).filter((d) => d.startsWith('test_data_set_'));
        for (const set of sets) {
          const files = (prefix: string) =>
            readdirSync(join(dir, set))
              .filter((f) => f.startsWith(prefix))
              .sort((a, b) => parseInt(a.slice(prefix.length)) - parseInt(b.slice(prefix.length)));
          const inputValues = Object.fromEntries(files('input_').map((f, i) => [graphInputs[i]!, readTensor(join(dir, set, f))]));
          const imported = importOnnx(model, { inputValues, source: name });
          const net = Net.build(imported.spec, { backend, batch: imported.batch });
          net.loadParams(imported.params);
          for (const input of net.inputNames) net.setInput(input, inputValues[input]!.data);
          net.forward();
          for (const [i, f] of files('output_').entries()) {
            const expected = readTensor(join(dir, set, f));
            const output = imported.outputs[i]!;
            const shape = net.shapeOf(output);
            if (shape.join() !== expected.shape.join())
              throw new Error(`${name}: output '${output}' has shape [${shape}], expected [${expected.shape}]`);
            assertClose(await net.read(output), expected.data, 1e-7, 1e-3, `${name} ${set} output '${output}'`);
          }
          net.dispose();
        }
        bump(tally.passed, backendName);
      } catch (error) {
        bump(tally.failed, backendName);
        throw error;
      }
    });
  }

after(() => {
  for (const backend of new Set([...tally.passed.keys(), ...tally.failed.keys()])) {
    console.log(
      `ONNX conformance [${backend}]: ${tally.passed.get(backend) ?? 0} passed, ` +
        `${tally.failed.get(backend) ?? 0} failed, ${tally.skipped.length} skipped`,
    );
  }
  for (const line of tally.skipped) console.log(`  skipped ${line}`);
});
