/**
 * The browser build, in headless Chromium (Debian's `chromium`, driven by playwright-core): the
 * library loads as plain ES modules (dist/src/browser.js), fetches its wasm, and the small AlexNet's
 * training step (forward, backward, SGD, forward again) on the wasm backend matches the reference
 * backend in the same page — on a page without cross-origin isolation (one thread, unshared
 * memory), on an isolated page's own thread (two threads, the page spinning while it waits) and in
 * a module Worker (two threads, blocking waits) — and on the WebGPU backend (Chromium's SwiftShader
 * adapter where there is no GPU).
 */
import type * as Library from '../src/browser.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import type { Net } from '../src/browser.js';

const root = new URL('../..', import.meta.url).pathname;
const chromiumPath = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => p && existsSync(p));
const skip = chromiumPath ? false : 'no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)';

interface CheckOptions {
  threads?: number;
  sharedMemory?: boolean;
  webgpu?: boolean;
}
interface CheckResult {
  backend: string;
  threads: number;
  simd: string;
  isolated: boolean;
  loss: [number, number];
  lossAfterStep: [number, number];
  maxLogitError: number;
  maxGradError: number;
  imagesPerSecond: number;
}

/** Runs in the browser (its source is served as /check.js): the reference and the wasm (or webgpu)
 * backend take the same training step from the same parameters. */
async function check(lib: typeof Library, options: CheckOptions): Promise<CheckResult> {
  const spec = lib.alexnetSmall({ inputSize: 28, channels: 1, classes: 10 });
  const batch = 4;
  const backend = options.webgpu ? await lib.WebGpuBackend.create() : await lib.WasmBackend.create(options);
  const nets = [new lib.ReferenceBackend(), backend].map((b) => lib.Net.build(spec, { backend: b, batch, seed: 7 }));
  const [ref, fast] = nets as [Net, Net];
  const values: Record<string, ArrayLike<number>> = {};
  for (const p of ref.params) values[p.name] = await p.value.read();
  fast.loadParams(values);
  const data = Float32Array.from({ length: batch * 28 * 28 }, (_, i) => Math.sin(i * 0.37));
  const labels = Array.from({ length: batch }, (_, i) => (i * 7) % 10);
  const maxError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1e-3 + Math.abs(a[i]!)));
    return worst;
  };
  const step = async (net: Net) => {
    net.setInput('data', data);
    net.setInput('label', labels);
    net.forward({ training: true });
    const loss = (await net.read('loss'))[0]!;
    net.backward();
    return loss;
  };
  const loss = [await step(ref), await step(fast)] as [number, number];
  const maxLogitError = maxError(await ref.read('fc8'), await fast.read('fc8'));
  const maxGradError = Math.max(
    ...(await Promise.all(ref.params.map(async (p) => maxError(await p.grad.read(), await fast.param(p.name).grad.read())))),
  );
  for (const net of nets) new lib.Sgd(net, { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 }).step();
  const lossAfterStep = [await step(ref), await step(fast)] as [number, number];
  const start = performance.now();
  for (let i = 0; i < 3; i++) await step(fast);
  const imagesPerSecond = (3 * batch) / ((performance.now() - start) / 1000);
  return {
    backend: backend.name,
    threads: 'threads' in backend ? backend.threads : 0,
    simd: 'simd' in backend ? backend.simd : '',
    isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false,
    loss,
    lossAfterStep,
    maxLogitError,
    maxGradError,
    imagesPerSecond,
  };
}

const workerScript = `import * as lib from '/dist/src/browser.js';
import { check } from '/check.js';
self.onmessage = async (e) => {
  try { self.postMessage(await check(lib, e.data)); } catch (error) { self.postMessage({ error: String(error?.stack ?? error) }); }
};`;

const types: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

/** Serves dist/ and the test's own scripts; `isolated` adds the headers for cross-origin isolation. */
function serve(isolated: boolean): Promise<Server> {
  const server = createServer((request, response) => {
    const path = normalize(new URL(request.url ?? '/', 'http://x').pathname);
    const headers: Record<string, string> = isolated
      ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
      : {};
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { ...headers, 'Content-Type': type });
      response.end(body);
    };
    if (path === '/') return send(200, types['.html']!, '<!doctype html><title>alexnet-ts</title>');
    if (path === '/check.js') return send(200, types['.js']!, `export ${check.toString()}`);
    if (path === '/worker.js') return send(200, types['.js']!, workerScript);
    const file = join(root, path);
    if (!path.startsWith('/dist/') || !existsSync(file)) return send(404, 'text/plain', 'not found');
    send(200, types[extname(file)] ?? 'application/octet-stream', readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let browser: Browser;
const servers: Server[] = [];
const url = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

before(async () => {
  if (skip) return;
  servers.push(await serve(false), await serve(true));
  // WebGPU on Linux is behind a flag; without a GPU Chromium offers SwiftShader's adapter.
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });
});

after(async () => {
  await browser?.close();
  for (const server of servers) server.close();
});

async function runInPage(isolated: boolean, options: CheckOptions, inWorker: boolean): Promise<CheckResult> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(url(servers[isolated ? 1 : 0]!));
    const result = await page.evaluate(
      async ([options, inWorker]) => {
        if (inWorker) {
          const worker = new Worker('/worker.js', { type: 'module' });
          return new Promise<CheckResult | { error: string }>((resolve) => {
            worker.onmessage = (e) => resolve(e.data);
            worker.onerror = (e) => resolve({ error: e.message });
            worker.postMessage(options);
          });
        }
        const lib = await import('/dist/src/browser.js' as string);
        const { check } = await import('/check.js' as string);
        return check(lib, options) as Promise<CheckResult>;
      },
      [options, inWorker] as const,
    );
    if ('error' in result) throw new Error(result.error);
    assert.deepEqual(errors, []);
    return result;
  } finally {
    await page.close();
  }
}

function assertMatches(result: CheckResult, threads: number | 'webgpu', isolated: boolean): void {
  assert.equal(result.isolated, isolated);
  if (threads === 'webgpu') assert.equal(result.backend, 'webgpu');
  else {
    assert.equal(result.threads, threads);
    assert.equal(result.simd, 'relaxed'); // Chromium has relaxed SIMD on by default
  }
  assert.ok(Number.isFinite(result.loss[0]) && result.loss[0] > 1, `reference loss ${result.loss[0]}`);
  assert.ok(Math.abs(result.loss[0] - result.loss[1]) < 1e-4 * result.loss[0], `losses ${result.loss.join(' vs ')}`);
  assert.ok(
    Math.abs(result.lossAfterStep[0] - result.lossAfterStep[1]) < 1e-4 * result.lossAfterStep[0],
    `losses after one SGD step ${result.lossAfterStep.join(' vs ')}`,
  );
  assert.notEqual(result.lossAfterStep[0], result.loss[0]);
  assert.ok(result.maxLogitError < 1e-3, `logits differ by ${result.maxLogitError} (relative)`);
  assert.ok(result.maxGradError < 2e-2, `gradients differ by ${result.maxGradError} (relative, +1e-3)`);
}

test('browser: a page without cross-origin isolation runs one thread on unshared memory', { skip }, async (t) => {
  const result = await runInPage(false, {}, false);
  assertMatches(result, 1, false);
  t.diagnostic(`small AlexNet training step, batch 4, 1 thread: ${result.imagesPerSecond.toFixed(0)} images/s`);
  const page = await browser.newPage();
  await page.goto(url(servers[0]!));
  const message = await page.evaluate(async () => {
    const lib = await import('/dist/src/browser.js' as string);
    return lib.WasmBackend.create({ threads: 2 }).then(
      () => 'created',
      (e: Error) => e.message,
    );
  });
  await page.close();
  assert.match(message, /2 threads need shared memory, which this page does not have: serve it cross-origin isolated/);
});

test('browser: an isolated page runs two threads on its own thread', { skip }, async () => {
  assertMatches(await runInPage(true, { threads: 2 }, false), 2, true);
});

test('browser: two threads inside a module Worker', { skip }, async (t) => {
  const result = await runInPage(true, { threads: 2 }, true);
  assertMatches(result, 2, true);
  t.diagnostic(`small AlexNet training step, batch 4, 2 threads in a Worker: ${result.imagesPerSecond.toFixed(0)} images/s`);
});

test("browser: a page's training step on the webgpu backend", { skip }, async (t) => {
  const result = await runInPage(false, { webgpu: true }, false);
  assertMatches(result, 'webgpu', false);
  t.diagnostic(`small AlexNet training step, batch 4, webgpu: ${result.imagesPerSecond.toFixed(1)} images/s`);
});
