/** The backends every suite runs over: the reference oracle, the wasm backend in the
 * configurations that change its code paths (relaxed-SIMD FMA or plain SIMD; one or two threads;
 * shared memory, or the unshared build a browser page without cross-origin isolation gets), and
 * the native backend on two threads (convolutions in oneDNN where it is installed) and on one (all
 * in the BLAS), where OpenBLAS is installed, and the
 * WebGPU backend where Dawn finds an adapter (CI: Mesa's llvmpipe through surfaceless GLES). */
import type { Backend } from '../src/index.js';
import { ReferenceBackend } from '../src/index.js';
import { WasmBackend } from '../src/backend/wasm/backend.js';
import { createNativeBackend } from '../src/backend/native/backend.js';
import { loadBlas } from '../src/backend/native/blas.js';
import { loadDnnl } from '../src/backend/native/dnnl.js';
import { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { nodeGpuDevice } from '../src/backend/webgpu/node.js';

export interface TestBackend {
  name: string;
  backend: Backend;
}

export async function testBackends(): Promise<TestBackend[]> {
  return [
    { name: 'reference', backend: new ReferenceBackend() },
    { name: 'wasm-relaxed-2t', backend: await WasmBackend.create({ threads: 2, relaxedSimd: true }) },
    { name: 'wasm-relaxed-1t-unshared', backend: await WasmBackend.create({ threads: 1, relaxedSimd: true, sharedMemory: false }) },
    { name: 'wasm-simd-2t', backend: await WasmBackend.create({ threads: 2, relaxedSimd: false }) },
    ...(await nativeBackends()),
    ...(await webgpuBackends()),
  ];
}

/** The native backend on two threads, with oneDNN's convolutions where it is found, and on one with
 * everything in the BLAS; none where no BLAS is found (CI installs both). */
export async function nativeBackends(): Promise<{ name: string; backend: WasmBackend }[]> {
  const blas = loadBlas();
  if (typeof blas === 'string') {
    console.log(`no native backend to test: ${blas}`);
    return [];
  }
  const everyLayer = { linearWeights: 0 }; // the BLAS route even for the suites' small shapes
  const dnnl = loadDnnl();
  if (typeof dnnl === 'string') console.log(`native backend without oneDNN: ${dnnl}`);
  const convolutions = typeof dnnl === 'string' ? undefined : dnnl;
  return [
    {
      name: convolutions ? 'native-dnnl-2t' : 'native-2t',
      backend: await createNativeBackend({ threads: 2, blas, nativeFrom: everyLayer, ...(convolutions ? { dnnl: convolutions } : {}) }),
    },
    { name: 'native-blas-1t', backend: await createNativeBackend({ threads: 1, blas, nativeFrom: everyLayer }) },
  ];
}

/** The WebGPU backend on the adapter Dawn finds; none without one (CI installs Mesa's GLES). */
export async function webgpuBackends(): Promise<{ name: string; backend: WebGpuBackend }[]> {
  const found = await nodeGpuDevice();
  if (typeof found === 'string') {
    console.log(`no webgpu backend to test: ${found}`);
    return [];
  }
  return [{ name: 'webgpu', backend: await WebGpuBackend.create(found) }];
}
