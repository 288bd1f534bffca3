/**
 * Every kernel of the wasm, native and webgpu backends against the reference backend on random
 * shapes (sizes that are not multiples of 4 or 8, groups, strides, asymmetric padding, dilation),
 * large enough that the work is split across threads (and, on webgpu, that the filter gradient is
 * split along K), for one and two threads and both SIMD builds. Tolerance: |Δ| ≤ 2e-5·max(1, rms) +
 * 1e-4·|ref|, rms being the root mean square of the reference output: fused multiply-adds and
 * another summation order change the rounding of long sums, in proportion to their size.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { type Backend, type DeviceBuffer, type KernelName, type KernelTable, Philox } from '../src/index.js';
import type { WasmBackend } from '../src/backend/wasm/backend.js';
import { windowCount } from '../src/layers/conv.js';
import { type Conv2dGeometry, KERNEL_WRITES, type Pool2dGeometry } from '../src/backend/kernels.js';
import { nativeOf } from '../src/backend/native/backend.js';
import { loadBlas } from '../src/backend/native/blas.js';
import { planners } from '../src/backend/webgpu/kernels.js';
import { testBackends } from './backends.js';
import { assertClose, withEnv } from './helpers.js';

const [oracle, ...configurations] = await testBackends();
const reference = oracle!.backend;

const rng = new Philox(2024);
const random = (length: number) => Float32Array.from({ length }, () => rng.nextNormal());

/** Runs one kernel on a backend: `inputs` are written, outputs start as `initial` (or zero). */
async function runKernel<K extends KernelName>(
  backend: Backend,
  kernel: K,
  params: KernelTable[K]['params'],
  inputs: Record<string, Float32Array>,
  outputs: Record<string, Float32Array>,
): Promise<Record<string, Float32Array>> {
  const buffers = Object.fromEntries(
    [...Object.entries(inputs), ...Object.entries(outputs)].map(([role, data]) => {
      const buffer = backend.allocate(data.length);
      backend.write(buffer, data);
      return [role, buffer];
    }),
  );
  backend.run(kernel, params, buffers as never);
  const result: Record<string, Float32Array> = {};
  for (const role of Object.keys(outputs)) result[role] = Float32Array.from(await backend.read(buffers[role]!));
  // What KERNEL_WRITES says a kernel only reads, it leaves as it was (backends cache on this).
  const writes: readonly string[] = KERNEL_WRITES[kernel];
  for (const [role, data] of Object.entries({ ...inputs, ...outputs }))
    if (!writes.includes(role))
      assert.deepEqual(await backend.read(buffers[role]!), data, `${kernel} on ${backend.name} wrote its ${role}`);
  for (const buffer of Object.values(buffers)) backend.free(buffer);
  return result;
}

async function compare<K extends KernelName>(
  what: string,
  kernel: K,
  params: KernelTable[K]['params'],
  inputs: Record<string, Float32Array>,
  outputs: Record<string, Float32Array>,
  exact = false,
): Promise<void> {
  const expected = await runKernel(reference, kernel, params, inputs, outputs);
  // The webgpu shaders declare their own write access per binding; it must agree with KERNEL_WRITES.
  const present = new Set([...Object.keys(inputs), ...Object.keys(outputs)]);
  const bound = planners[kernel](params, present).flatMap((d) => d.shader.bindings.filter((b) => b.write).map((b) => b.role));
  const declared: readonly string[] = KERNEL_WRITES[kernel];
  assert.deepEqual(
    new Set(bound.filter((role) => present.has(role))),
    new Set(declared.filter((role) => present.has(role))),
    `${kernel}: the webgpu shaders' written bindings against KERNEL_WRITES`,
  );
  for (const { name, backend } of configurations) {
    const actual = await runKernel(backend, kernel, params, inputs, outputs);
    for (const role of Object.keys(outputs)) {
      const ref = expected[role]!;
      const rms = Math.sqrt(ref.reduce((s, v) => s + v * v, 0) / ref.length);
      assertClose(actual[role]!, ref, exact ? 0 : 2e-5 * Math.max(1, rms), exact ? 0 : 1e-4, `${what} [${name}] ${role}`);
    }
  }
}

function conv(
  batch: number,
  inChannels: number,
  inHeight: number,
  inWidth: number,
  outChannels: number,
  k: [number, number],
  s: [number, number],
  pad: [number, number, number, number],
  d: [number, number],
  groups: number,
): Conv2dGeometry {
  return {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    groups,
    kernelH: k[0],
    kernelW: k[1],
    strideH: s[0],
    strideW: s[1],
    padTop: pad[0],
    padLeft: pad[1],
    dilationH: d[0],
    dilationW: d[1],
    outHeight: windowCount(inHeight, k[0], s[0], pad[0], pad[2], d[0], false),
    outWidth: windowCount(inWidth, k[1], s[1], pad[1], pad[3], d[1], false),
  };
}

const convCases: [string, Conv2dGeometry][] = [
  ['conv1-like 11×11 stride 4', conv(3, 3, 39, 39, 16, [11, 11], [4, 4], [2, 2, 2, 2], [1, 1], 1)],
  // Wide, strided and padded: oneDNN runs the second unpadded inside a frame of zeros (dnnl.ts `framed`), reordered to its
  // blocked layout; the first, whose last input column no window reaches, stays on oneDNN's GEMM.
  ['9×9 stride 2, padded left, last column unused', conv(2, 3, 20, 21, 8, [9, 9], [2, 2], [0, 3, 2, 0], [1, 1], 1)],
  ['9×9 stride 3, 16 channels in 2 groups, asymmetric padding', conv(2, 16, 23, 19, 16, [9, 9], [3, 3], [3, 1, 2, 3], [1, 1], 2)],
  ['two columns, 5×5, asymmetric padding', conv(2, 6, 23, 19, 10, [5, 5], [2, 2], [2, 1, 1, 2], [1, 1], 2)],
  ['groups 2, threads split', conv(4, 16, 27, 27, 32, [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 2)],
  ['groups 2, fewer images than tasks', conv(2, 20, 27, 27, 32, [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 2)],
  ['depthwise-ish groups 4, 13×13', conv(3, 8, 13, 13, 12, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 4)],
  ['same size, kernel wider than the image', conv(3, 3, 3, 2, 4, [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 1)],
  ['same size, one column', conv(3, 2, 4, 1, 3, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1)],
  ['7×7 maps, data-gradient panels of whole images, the last one short', conv(3, 64, 7, 7, 16, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1)],
  // One input channel per group: oneDNN's weight gradient on NHWC tensors (dnnl.ts)
  ['one input channel, 5×5, like the small net conv1', conv(3, 1, 12, 11, 16, [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 1)],
  ['depthwise, 8 groups of one channel', conv(2, 8, 9, 10, 16, [3, 3], [2, 1], [1, 1, 1, 0], [1, 1], 8)],
  ['dilated rectangular, no padding', conv(2, 5, 17, 15, 7, [3, 2], [1, 2], [0, 0, 0, 0], [2, 3], 1)],
  ['dilated, strided, asymmetric padding, 8+ channels per group', conv(2, 20, 17, 15, 12, [3, 2], [2, 1], [1, 0, 2, 1], [2, 3], 2)],
];

for (const [what, g] of convCases) {
  const xLen = g.batch * g.inChannels * g.inHeight * g.inWidth;
  const wLen = g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  const yLen = g.batch * g.outChannels * g.outHeight * g.outWidth;
  test(`kernels: conv2d: ${what}`, async () => {
    await compare(
      `${what} forward`,
      'conv2d_forward',
      g,
      { x: random(xLen), weight: random(wLen), bias: random(g.outChannels) },
      { y: new Float32Array(yLen) },
    );
    await compare(
      `${what} forward without bias`,
      'conv2d_forward',
      g,
      { x: random(xLen), weight: random(wLen) },
      { y: new Float32Array(yLen) },
    );
    await compare(`${what} data gradient`, 'conv2d_backward_data', g, { dy: random(yLen), weight: random(wLen) }, { dx: random(xLen) });
    await compare(
      `${what} filter gradient`,
      'conv2d_backward_filter',
      g,
      { x: random(xLen), dy: random(yLen) },
      { dweight: random(wLen), dbias: random(g.outChannels) },
    );
  });
}

test('kernels: gemm: every transpose, alpha and beta, odd sizes', async () => {
  for (const [M, N, K] of [
    [37, 29, 53],
    [5, 300, 7],
    [130, 70, 260],
  ] as const) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const beta of [0, 0.5, 1]) {
          await compare(
            `gemm ${M}×${N}×${K} tA=${transA} tB=${transB} β=${beta}`,
            'gemm',
            { M, N, K, transA, transB, alpha: 0.7, beta },
            { a: random(M * K), b: random(K * N) },
            { c: random(M * N) },
          );
        }
      }
    }
  }
});

test('kernels: linear: forward and both gradients, with and without bias', async () => {
  for (const [batch, inFeatures, outFeatures] of [
    [1, 700, 33],
    [3, 9, 5],
    [5, 300, 37],
    [64, 1000, 500],
  ] as const) {
    const p = { batch, inFeatures, outFeatures };
    await compare(
      'linear forward',
      'linear_forward',
      p,
      { x: random(batch * inFeatures), weight: random(outFeatures * inFeatures), bias: random(outFeatures) },
      { y: random(batch * outFeatures) },
    );
    await compare(
      'linear forward, no bias',
      'linear_forward',
      p,
      { x: random(batch * inFeatures), weight: random(outFeatures * inFeatures) },
      { y: random(batch * outFeatures) },
    );
    await compare(
      'linear data gradient',
      'linear_backward_data',
      p,
      { dy: random(batch * outFeatures), weight: random(outFeatures * inFeatures) },
      { dx: random(batch * inFeatures) },
    );
    await compare(
      'linear parameter gradients',
      'linear_backward_params',
      p,
      { x: random(batch * inFeatures), dy: random(batch * outFeatures) },
      { dweight: random(outFeatures * inFeatures), dbias: random(outFeatures) },
    );
  }
});

/** A square pooling window: kernel, stride, padding before the input and dilation the same both ways. */
function pool(
  batch: number,
  channels: number,
  [inHeight, inWidth]: [number, number],
  [outHeight, outWidth]: [number, number],
  k: number,
  stride: number,
  pad: number,
  dilation: number,
): Pool2dGeometry {
  const window = {
    kernelH: k,
    kernelW: k,
    strideH: stride,
    strideW: stride,
    padTop: pad,
    padLeft: pad,
    dilationH: dilation,
    dilationW: dilation,
  };
  return { batch, channels, inHeight, inWidth, outHeight, outWidth, ...window };
}

test('kernels: max-pool: overlapping, ceil, padded, dilated', async () => {
  const cases: Pool2dGeometry[] = [
    pool(4, 32, [27, 27], [13, 13], 3, 2, 0, 1),
    pool(2, 5, [8, 10], [4, 5], 3, 2, 0, 1),
    pool(2, 3, [9, 8], [5, 5], 2, 2, 1, 2),
    pool(3, 4, [7, 6], [4, 3], 3, 2, 1, 1),
    pool(1, 2, [5, 5], [3, 3], 2, 2, 1, 1),
  ];
  for (const g of cases) {
    const xLen = g.batch * g.channels * g.inHeight * g.inWidth,
      yLen = g.batch * g.channels * g.outHeight * g.outWidth;
    const x = random(xLen);
    await compare('maxpool forward', 'maxpool2d_forward', g, { x }, { y: new Float32Array(yLen) }, true);
    await compare('maxpool backward', 'maxpool2d_backward', g, { x, dy: random(yLen) }, { dx: random(xLen) });
    // Ties (ReLU zeros, rounded values), NaN and windows of −∞ route the gradient as PyTorch does.
    const special = x.map((v, i) => (i % 97 === 5 ? NaN : i % 89 === 3 ? -Infinity : Math.max(0, Math.round(v * 2) / 2)));
    for (let i = 0; i < xLen; i += 31) special.fill(-Infinity, i, i + 12);
    await compare('maxpool forward, ties/NaN/−∞', 'maxpool2d_forward', g, { x: special }, { y: new Float32Array(yLen) }, true);
    await compare('maxpool backward, ties/NaN/−∞', 'maxpool2d_backward', g, { x: special, dy: random(yLen) }, { dx: random(xLen) });
  }
});

test('kernels: adaptive average pool: dividing, overlapping bins, upsampling', async () => {
  for (const [batch, channels, inHeight, inWidth, outHeight, outWidth] of [
    [2, 3, 13, 13, 6, 6],
    [3, 4, 7, 5, 3, 4],
    [1, 2, 12, 8, 4, 4],
    [2, 2, 3, 2, 5, 3],
  ] as const) {
    const g = { batch, channels, inHeight, inWidth, outHeight, outWidth };
    const xLen = batch * channels * inHeight * inWidth,
      yLen = batch * channels * outHeight * outWidth;
    await compare('adaptive pool forward', 'adaptive_avgpool2d_forward', g, { x: random(xLen) }, { y: random(yLen) });
    await compare('adaptive pool backward', 'adaptive_avgpool2d_backward', g, { dy: random(yLen) }, { dx: random(xLen) });
  }
});

test('kernels: LRN: both sizes, ragged spatial sizes, β = 0.75 fast path and general β', async () => {
  for (const p of [
    { batch: 4, channels: 37, spatial: 169, size: 5, alpha: 0.01, beta: 0.75, k: 2 },
    { batch: 3, channels: 7, spatial: 30, size: 3, alpha: 0.3, beta: 0.6, k: 1 },
    { batch: 2, channels: 2, spatial: 5, size: 5, alpha: 0.2, beta: 0.75, k: 1.5 },
  ]) {
    const n = p.batch * p.channels * p.spatial;
    const x = random(n);
    const forward = await runKernel(reference, 'lrn_forward', p, { x }, { y: new Float32Array(n), scale: new Float32Array(n) });
    await compare('lrn forward', 'lrn_forward', p, { x }, { y: new Float32Array(n), scale: new Float32Array(n) });
    await compare(
      'lrn backward',
      'lrn_backward',
      p,
      { x, y: forward.y!, scale: forward.scale!, dy: random(n) },
      { dx: new Float32Array(n) },
    );
  }
});

test('kernels: elementwise: activations, dropout (bit-identical masks), multiply, accumulate, SGD', async () => {
  const length = 100_003;
  for (const fn of ['relu', 'tanh', 'sigmoid'] as const) {
    const x = random(length);
    await compare(`${fn} forward`, 'activation_forward', { fn, length }, { x }, { y: new Float32Array(length) });
    await compare(
      `${fn} backward`,
      'activation_backward',
      { fn, length },
      { y: random(length), dy: random(length) },
      { dx: new Float32Array(length) },
    );
  }
  for (const offset of [0, 4_000_000_001])
    await compare(
      `dropout at element ${offset}`,
      'dropout_forward',
      { length, p: 0.3, seed: 77, stream: 5, offset },
      { x: random(length) },
      { y: new Float32Array(length), mask: new Float32Array(length) },
      true,
    );
  // A slice at any element offset (not a multiple of 4 either) draws the whole batch's masks there.
  const whole = await runKernel(
    reference,
    'dropout_forward',
    { length, p: 0.5, seed: 9, stream: 0, offset: 0 },
    { x: random(length) },
    {
      y: new Float32Array(length),
      mask: new Float32Array(length),
    },
  );
  for (const [from, to] of [
    [0, 4099],
    [4099, 70_001],
    [70_001, length],
  ] as const) {
    const slice = { y: new Float32Array(to - from), mask: new Float32Array(to - from) };
    const x = random(to - from);
    for (const { name, backend } of [oracle!, ...configurations]) {
      const { mask } = await runKernel(
        backend,
        'dropout_forward',
        { length: to - from, p: 0.5, seed: 9, stream: 0, offset: from },
        { x },
        slice,
      );
      assert.deepEqual(mask, whole.mask!.subarray(from, to), `dropout's mask of elements ${from}…${to} [${name}]`);
    }
  }
  await compare('multiply', 'multiply', { length }, { a: random(length), b: random(length) }, { y: new Float32Array(length) }, true);
  await compare('accumulate', 'accumulate', { length }, { x: random(length) }, { y: random(length) }, true);
  await compare(
    'sgd update',
    'sgd_update',
    { length, lr: 0.01, momentum: 0.9, weightDecay: 0.0005 },
    { grad: random(length) },
    { weight: random(length), velocity: random(length) },
  );
});

test('wasm memory: freed buffers are reused and planned bytes are reported', async () => {
  const backend = configurations.find(({ name }) => name === 'wasm-relaxed-1t-unshared')!.backend as WasmBackend;
  const before = backend.allocatedBytes;
  const a = backend.allocate(1000);
  const offsetBytes = backend.allocatedBytes - before;
  backend.free(a);
  const b = backend.allocate(1000);
  if (backend.allocatedBytes - before !== offsetBytes) throw new Error('a freed block was not reused');
  backend.free(b);
  if (backend.allocatedBytes !== before) throw new Error(`${backend.allocatedBytes - before} bytes leaked`);
});

test('kernels: random fill: the same counter-based draws as the reference, with the right moments', async () => {
  const length = 200_001;
  await compare(
    'uniform',
    'random_fill',
    { length, seed: 9, stream: 3, distribution: 'uniform', a: -0.5, b: 0.25 },
    {},
    { y: new Float32Array(length) },
  );
  await compare(
    'normal',
    'random_fill',
    { length, seed: 9, stream: 4, distribution: 'normal', a: 0.1, b: 0.01 },
    {},
    { y: new Float32Array(length) },
  );
  const { y } = await runKernel(
    configurations[0]!.backend,
    'random_fill',
    { length, seed: 1, stream: 0, distribution: 'normal', a: 0, b: 1 },
    {},
    { y: new Float32Array(length) },
  );
  const mean = y!.reduce((s, v) => s + v, 0) / length;
  const variance = y!.reduce((s, v) => s + (v - mean) ** 2, 0) / length;
  if (Math.abs(mean) > 0.01 || Math.abs(variance - 1) > 0.02) throw new Error(`normal draws have mean ${mean}, variance ${variance}`);
});

test('without a BLAS library, auto falls back to wasm and says why; native is a clear error', async () => {
  const script = `
    const { createBackend } = await import(${JSON.stringify(new URL('../src/backend/choose.js', import.meta.url).href)});
    const { backend, fallback } = await createBackend('auto', 1);
    console.log(JSON.stringify({ name: backend.name, fallback }));
    await backend.dispose();
    try { await createBackend('native', 1); } catch (error) { console.log(JSON.stringify({ error: error.message })); }`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ALEXNET_BLAS: '/nonexistent/libopenblas.so.0' },
  });
  const [auto, native] = out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { name?: string; fallback?: string; error?: string });
  assert.equal(auto!.name, 'wasm');
  assert.match(auto!.fallback!, /no OpenBLAS library found \(tried \/nonexistent\/libopenblas.so.0\).*; running the wasm backend$/);
  assert.match(native!.error!, /^the native backend is not available: no OpenBLAS library found/);
});

test('without oneDNN, the native backend keeps its convolutions on im2col + BLAS and says why', async () => {
  const script = `
    const { loadDnnl } = await import(${JSON.stringify(new URL('../src/backend/native/dnnl.js', import.meta.url).href)});
    const { createBackend } = await import(${JSON.stringify(new URL('../src/backend/choose.js', import.meta.url).href)});
    const { nativeOf } = await import(${JSON.stringify(new URL('../src/backend/native/backend.js', import.meta.url).href)});
    const { backend } = await createBackend('native', 1);
    console.log(JSON.stringify({ reason: loadDnnl(), name: backend.name, dnnl: nativeOf(backend)?.dnnl !== undefined }));
    await backend.dispose();`;
  const run = (ALEXNET_DNNL: string) =>
    JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ALEXNET_DNNL } }),
    ) as {
      reason: string;
      name: string;
      dnnl: boolean;
    };
  if (typeof loadBlas() === 'string') return; // no native backend here at all (the test above covers it)
  assert.deepEqual(run('off'), { reason: 'oneDNN turned off (ALEXNET_DNNL=off)', name: 'native', dnnl: false });
  const missing = run('/nonexistent/libdnnl.so.2');
  assert.equal(
    missing.reason,
    "no oneDNN library found (tried /nonexistent/libdnnl.so.2); install Debian's libdnnl2, or name one with ALEXNET_DNNL",
  );
  assert.equal(missing.dnnl, false);
});

test('a convolution sees new weights: written by the host, or by a kernel (SGD), into the same buffer', async () => {
  const g = convCases.find(([name]) => name.startsWith('groups 2, threads split'))![1];
  const xLen = g.batch * g.inChannels * g.inHeight * g.inWidth,
    wLen = g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW,
    yLen = g.batch * g.outChannels * g.outHeight * g.outWidth;
  const [x, w1, w2, grad] = [random(xLen), random(wLen), random(wLen), random(wLen)];
  const stepped = w2.map((v, i) => v - 0.5 * grad[i]!); // sgd_update with lr 0.5, no momentum or decay
  const expected = async (weight: Float32Array) =>
    (await runKernel(reference, 'conv2d_forward', g, { x, weight }, { y: new Float32Array(yLen) })).y!;
  for (const { name, backend } of configurations) {
    const [xb, wb, yb, gb, vb] = [xLen, wLen, yLen, wLen, wLen].map((n) => backend.allocate(n)) as DeviceBuffer[];
    backend.write(xb, x);
    backend.write(gb, grad);
    backend.write(vb, new Float32Array(wLen));
    const forward = async (weight: Float32Array, why: string) => {
      backend.run('conv2d_forward', g, { x: xb, weight: wb, y: yb });
      assertClose(Float32Array.from(await backend.read(yb)), await expected(weight), 1e-4, 1e-4, `${why} [${name}]`);
    };
    backend.write(wb, w1);
    await forward(w1, 'first weights');
    await forward(w1, 'the same weights again');
    backend.write(wb, w2);
    await forward(w2, 'weights written by the host');
    backend.run('sgd_update', { length: wLen, lr: 0.5, momentum: 0, weightDecay: 0 }, { weight: wb, grad: gb, velocity: vb });
    await forward(stepped, 'weights written by sgd_update');
    for (const b of [xb, wb, yb, gb, vb]) backend.free(b);
  }
});

test('a convolution output kept in a blocked layout (native) reads right after partial and accumulating writes, copies, pooling, NaN', async () => {
  const window = { kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1, dilationH: 1, dilationW: 1 };
  const maps = { inHeight: 9, inWidth: 9, outHeight: 9, outWidth: 9 };
  const conv: Conv2dGeometry = { batch: 2, inChannels: 3, outChannels: 16, groups: 1, ...maps, ...window };
  const pool: Pool2dGeometry = {
    ...conv,
    ...window,
    channels: 16,
    outHeight: 4,
    outWidth: 4,
    strideH: 2,
    strideW: 2,
    padTop: 0,
    padLeft: 0,
  };
  const dilated: Pool2dGeometry = {
    ...pool,
    kernelH: 2,
    kernelW: 2,
    padTop: 1,
    padLeft: 1,
    dilationH: 2,
    dilationW: 2,
    outHeight: 5,
    outWidth: 5,
  };
  const conv2: Conv2dGeometry = { ...conv, inChannels: 16, inHeight: 4, inWidth: 4, outHeight: 4, outWidth: 4 };
  const [n, pooled] = [2 * 16 * 81, 2 * 16 * 16];
  // A NaN pixel makes NaN at its neighbours' outputs in every channel: pooling must pass it on, as PyTorch's does.
  const x = random(2 * 3 * 81).fill(NaN, 40, 41);
  const data = { x, w: random(16 * 27), w2: random(16 * 144), a: random(n), y: new Float32Array(n), d: new Float32Array(2 * 16 * 25) };
  const relu = { fn: 'relu', length: n } as const;
  const programs: [string, (b: Backend, t: Record<string, DeviceBuffer>) => void][] = [
    ['accumulated into', (b, t) => b.run('accumulate', { length: n }, { x: t.a!, y: t.y! })],
    ['partly written by the host', (b, t) => b.write(t.y!, [1, 2, 3, 4, 5], 7)],
    [
      'copied, the copy through ReLU',
      (b, t) => {
        b.run('copy', { length: n }, { x: t.y!, y: t.z! });
        b.run('activation_forward', relu, { x: t.z!, y: t.a! });
      },
    ],
    [
      'max-pooled, convolved, multiplied',
      (b, t) => {
        b.run('maxpool2d_forward', pool, { x: t.y!, y: t.p! });
        b.run('conv2d_forward', conv2, { x: t.p!, weight: t.w2!, y: t.q! });
        b.run('multiply', { length: pooled }, { a: t.q!, b: t.p!, y: t.m! });
      },
    ],
    ['max-pooled, padded and dilated', (b, t) => b.run('maxpool2d_forward', dilated, { x: t.y!, y: t.d! })],
  ];
  const run = async (backend: Backend, program: (b: Backend, t: Record<string, DeviceBuffer>) => void) => {
    const t: Record<string, DeviceBuffer> = {};
    const zeros = { z: new Float32Array(n), p: new Float32Array(pooled), q: new Float32Array(pooled), m: new Float32Array(pooled) };
    for (const [role, values] of Object.entries({ ...data, ...zeros })) backend.write((t[role] = backend.allocate(values.length)), values);
    backend.run('conv2d_forward', conv, { x: t.x!, weight: t.w!, y: t.y! });
    program(backend, t);
    const read = Object.fromEntries(
      await Promise.all(['y', 'z', 'a', 'p', 'q', 'm', 'd'].map(async (r) => [r, Float32Array.from(await backend.read(t[r]!))])),
    );
    for (const buffer of Object.values(t)) backend.free(buffer);
    return read as Record<string, Float32Array>;
  };
  for (const [what, program] of programs) {
    const expected = await run(reference, program);
    for (const { name, backend } of configurations) {
      const actual = await run(backend, program);
      for (const role of Object.keys(expected)) assertClose(actual[role]!, expected[role]!, 1e-4, 1e-4, `${what} [${name}] ${role}`);
    }
  }
});

test('kernels: weights changed between passes, read at two batch sizes (native shares their blocked copies) give the new results', async () => {
  const linear = { batch: 16, inFeatures: 40, outFeatures: 24 };
  const convolution = conv(2, 8, 6, 6, 16, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1);
  // 11×11 / 4, padded: native runs it on a zeroed frame around its input, one frame area shared by both batch sizes.
  const framed = conv(2, 3, 39, 39, 16, [11, 11], [4, 4], [2, 2, 2, 2], [1, 1], 1);
  // Each pass runs the layer on the whole batch and on its first images, in turn first: one copy of the weights serves both.
  const batches = [
    [linear.batch, convolution.batch],
    [8, 1],
  ] as const;
  const layers = [
    ['linear', linear.inFeatures * linear.batch, linear.outFeatures * linear.inFeatures, linear.batch * linear.outFeatures],
    ['conv', 2 * 8 * 36, 16 * 8 * 9, 2 * 16 * 36],
    ['framed conv', 2 * 3 * 39 * 39, 16 * 3 * 121, 2 * 16 * 81],
  ] as const;
  for (const [layer, xLength, wLength, yLength] of layers) {
    const [x, w, grad, patch] = [random(xLength), random(wLength), random(wLength), random(5)];
    const g = layer === 'conv' ? convolution : framed;
    const forward = (b: Backend, t: Record<string, DeviceBuffer>, [rows, images]: readonly [number, number]) =>
      layer === 'linear'
        ? b.run('linear_forward', { ...linear, batch: rows }, { x: t.x!, weight: t.w!, y: t.y! })
        : b.run('conv2d_forward', { ...g, batch: images }, { x: t.x!, weight: t.w!, y: t.y! });
    const run = async (backend: Backend) => {
      const t = Object.fromEntries(
        Object.entries({ x, w, grad, v: new Float32Array(wLength), y: new Float32Array(yLength) }).map(([role, values]) => {
          const buffer = backend.allocate(values.length);
          backend.write(buffer, values);
          return [role, buffer];
        }),
      );
      const outputs: Float32Array[] = [];
      const pass = async () => {
        // The framed convolution's first pass starts with the smaller batch, so that its frame area grows.
        for (const batch of (outputs.length % 4 === 0) !== (layer === 'framed conv') ? batches : [...batches].reverse()) {
          forward(backend, t, batch);
          const written = layer === 'linear' ? batch[0] * linear.outFeatures : (batch[1] * yLength) / convolution.batch;
          outputs.push(Float32Array.from(await backend.read(t.y!)).subarray(0, written));
        }
      };
      await pass();
      const sgd = { length: wLength, lr: 0.5, momentum: 0.9, weightDecay: 0.01 };
      backend.run('sgd_update', sgd, { weight: t.w!, grad: t.grad!, velocity: t.v! });
      await pass();
      backend.write(t.w!, patch, 3);
      await pass();
      for (const buffer of Object.values(t)) backend.free(buffer);
      return outputs;
    };
    const expected = await run(reference);
    for (const { name, backend } of configurations) {
      const actual = await run(backend);
      expected.forEach((y, i) => assertClose(actual[i]!, y, 1e-4, 1e-4, `${layer}, pass ${(i >> 1) + 1}.${i & 1} [${name}]`));
    }
  }
});

test('kernels: convolutions of a batch of small blocked maps (native: laid side by side) match the reference', async () => {
  const first = conv(18, 3, 6, 7, 16, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1);
  const cases: [string, Conv2dGeometry][] = [
    ['3×3, padded, 18 images (strips of 16 and 2)', conv(18, 16, 6, 7, 24, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1)],
    ['3×4, asymmetric padding, 2 groups', conv(18, 16, 6, 7, 16, [3, 4], [1, 1], [1, 2, 0, 1], [1, 1], 2)],
    ['unpadded 3×3 (no gap)', conv(18, 16, 6, 7, 8, [3, 3], [1, 1], [0, 0, 0, 0], [1, 1], 1)],
    ['1×1', conv(18, 16, 6, 7, 32, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 1)],
  ];
  const x = random(18 * 3 * 42);
  for (const [what, g] of cases) {
    const w = [random(16 * 27), random(g.outChannels * (16 / g.groups) * g.kernelH * g.kernelW), random(g.outChannels)];
    for (const bias of [true, false]) {
      const run = async (backend: Backend) => {
        const values = [x, ...w, new Float32Array(18 * 16 * 42), new Float32Array(18 * g.outChannels * g.outHeight * g.outWidth)];
        const [tx, tw1, tw2, tb, ty, tz] = values.map((v) => {
          const buffer = backend.allocate(v.length);
          backend.write(buffer, v);
          return buffer;
        });
        backend.run('conv2d_forward', first, { x: tx!, weight: tw1!, y: ty! });
        backend.run('conv2d_forward', g, { x: ty!, weight: tw2!, bias: bias ? tb : undefined, y: tz! });
        const out = Float32Array.from(await backend.read(tz!));
        for (const buffer of [tx, tw1, tw2, tb, ty, tz]) backend.free(buffer!);
        return out;
      };
      const expected = await run(reference);
      // Strips run by default only on 8-channel blocks (AVX2): forced on, so that any CPU takes the path.
      for (const { name, backend } of configurations)
        assertClose(
          await withEnv('ALEXNET_DNNL_STRIPS', 'on', () => run(backend)),
          expected,
          1e-4,
          1e-4,
          `${what}, bias ${bias} [${name}]`,
        );
    }
  }
});

test("kernels: max-pooling a tensor in 16- and 4-channel blocks (an AVX-512 CPU's layout, native) matches the reference", async () => {
  // oneDNN picks the block for the CPU (8 with AVX2, 16 with AVX-512): on this one the other blocks are set up by hand.
  const g = pool(3, 32, [9, 8], [5, 5], 3, 2, 1, 1);
  const [planes, pixels] = [g.batch * g.channels, g.inHeight * g.inWidth];
  const x = random(planes * pixels).fill(NaN, 100, 101);
  const expected = (await runKernel(reference, 'maxpool2d_forward', g, { x }, { y: new Float32Array(planes * 25) })).y!;
  for (const { name, backend } of configurations) {
    const dnnl = nativeOf(backend)?.dnnl;
    if (!dnnl) continue;
    for (const block of [16, 4]) {
      // NCHW → nChw{block}c: channel c of pixel p at ((n·C/block + c/block)·pixels + p)·block + c % block.
      const blocked = new Float32Array(x.length);
      for (let plane = 0; plane < planes; plane++) {
        const [n, c] = [Math.floor(plane / g.channels), plane % g.channels];
        for (let p = 0; p < pixels; p++) {
          blocked[((n * (g.channels / block) + Math.floor(c / block)) * pixels + p) * block + (c % block)] = x[plane * pixels + p]!;
        }
      }
      const [tx, ty] = [backend.allocate(x.length), backend.allocate(expected.length)];
      backend.write(tx, blocked);
      Object.assign(tx, { layout: dnnl.blockedLayout([g.batch, g.channels, g.inHeight, g.inWidth], block) });
      backend.run('maxpool2d_forward', g, { x: tx, y: ty });
      assert.equal((ty as { layout?: { block?: number } }).layout?.block, block, `the output stays in blocks of ${block} [${name}]`);
      assertClose(Float32Array.from(await backend.read(ty)), expected, 0, 0, `blocks of ${block} [${name}]`);
      backend.free(tx);
      backend.free(ty);
    }
  }
});
