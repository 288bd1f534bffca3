/**
 * The WebGPU backend as a whole: training steps of a scaled AlexNet (initialisation, dropout masks,
 * LRN, pooling, the loss and SGD) against the reference backend tensor by tensor, and its refusals.
 * Its kernels are in the kernel, PyTorch-parity and ONNX suites with the other backends. Skipped
 * where Dawn finds no adapter (CI has one: Mesa's llvmpipe through surfaceless GLES).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { type Backend, Net, Philox, ReferenceBackend, Sgd } from '../src/index.js';
import { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { alexnetSmall } from '../src/models/alexnet.js';
import { netRoles, withLoss } from '../src/net/roles.js';
import { sizeOf } from '../src/tensor.js';
import { webgpuBackends } from './backends.js';
import { assertClose } from './helpers.js';

const [gpu] = await webgpuBackends();
const skip = gpu ? false : 'no WebGPU adapter';

/** Three SGD steps with dropout on the same batch; returns every parameter and the losses. */
async function train(backend: Backend): Promise<{ params: Record<string, Float32Array>; losses: number[] }> {
  const net = Net.build(withLoss(alexnetSmall({ inputSize: 28, channels: 1, classes: 10 })), { backend, batch: 4, seed: 11 });
  const sgd = new Sgd(net, { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 });
  const rng = new Philox(3);
  const { data, labels, loss } = netRoles(net);
  net.setInput(
    data,
    Float32Array.from({ length: sizeOf(net.shapeOf(data)) }, () => rng.nextNormal()),
  );
  net.setInput(labels!, [3, 0, 9, 3]);
  const losses = [];
  for (let step = 0; step < 3; step++) {
    net.forward({ training: true });
    losses.push((await net.read(loss!))[0]!);
    net.backward();
    sgd.step();
  }
  const params = Object.fromEntries(Object.entries(await net.readParams()).map(([name, data]) => [name, Float32Array.from(data)]));
  net.dispose();
  return { params, losses };
}

test('webgpu: three training steps of the small AlexNet match the reference backend, parameter by parameter', { skip }, async () => {
  const expected = await train(new ReferenceBackend());
  const actual = await train(gpu!.backend);
  assertClose(actual.losses, expected.losses, 1e-5, 1e-4, 'losses');
  for (const [name, values] of Object.entries(expected.params)) {
    const rms = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length);
    assertClose(actual.params[name]!, values, 1e-5 * Math.max(1, rms), 1e-3, `parameter ${name} after 3 steps`);
  }
});

test('webgpu: a buffer beyond the device limit, an in-place kernel and a freed buffer are refused clearly', { skip }, () => {
  const backend = gpu!.backend;
  const limit = backend.device.limits.maxStorageBufferBindingSize;
  assert.throws(() => backend.allocate(limit / 4 + 1), /exceeds this device's largest storage binding \([\d.]+ MiB, .+\)/);
  const x = backend.allocate(8);
  assert.throws(() => backend.run('activation_forward', { fn: 'relu', length: 8 }, { x, y: x }), /in-place kernels are not supported/);
  backend.free(x);
  assert.throws(() => backend.write(x, [1]), /buffer was freed/);
});

test('webgpu: without navigator.gpu or a device, create says so', async () => {
  if ((globalThis as { navigator?: Navigator }).navigator?.gpu) return; // a host with WebGPU built in
  await assert.rejects(WebGpuBackend.create(), /this JavaScript host has no navigator\.gpu/);
});

test('webgpu: with no adapter the CLI says what Dawn tried, in one line, and exits with 1', (t) => {
  const cli = new URL('../src/cli/main.js', import.meta.url).pathname;
  // An X11 EGL display that does not exist takes the software adapter away.
  const env = { ...process.env, EGL_PLATFORM: 'x11', DISPLAY: '' };
  const run = spawnSync(process.execPath, [cli, 'bench', '--model', 'alexnet-small-28', '--backend', 'webgpu', '--batch', '1'], {
    encoding: 'utf8',
    env,
  });
  if (run.status === 0) return t.skip('a GPU adapter answered');
  assert.equal(run.status, 1);
  assert.equal(run.stdout, '');
  const said = run.stderr
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('alexnet:'));
  assert.deepEqual(said.length, 1, run.stderr);
  assert.match(
    said[0]!,
    /^alexnet: the webgpu backend is not available: no WebGPU adapter: Dawn tried the default backend, then OpenGL ES/,
  );
});
