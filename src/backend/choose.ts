/**
 * Choosing a backend in Node: `native` is the wasm backend with its GEMMs in the system's BLAS and
 * its convolutions in oneDNN where that is installed too (the fastest where OpenBLAS is), `wasm`
 * the portable one, `webgpu` the GPU (Dawn), `reference` the oracle. `auto` takes native when its
 * library is found and says why not otherwise; it never picks webgpu, whose adapter may be a CPU
 * emulation far slower than native.
 */
import type { Backend } from './backend.js';
import { createNativeBackend } from './native/backend.js';
import { loadBlas } from './native/blas.js';
import { loadDnnl } from './native/dnnl.js';
import { ReferenceBackend } from './reference/backend.js';
import { WasmBackend } from './wasm/backend.js';
import { WebGpuBackend } from './webgpu/backend.js';
import { nodeGpuDevice } from './webgpu/node.js';

export const BACKENDS = ['auto', 'native', 'wasm', 'webgpu', 'reference'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export interface ChosenBackend {
  backend: Backend;
  /** Why `auto` fell back to wasm, when it did. */
  fallback?: string;
}

export async function createBackend(choice: BackendChoice, threads: number): Promise<ChosenBackend> {
  if (choice === 'reference') return { backend: new ReferenceBackend() };
  if (choice === 'wasm') return { backend: await WasmBackend.create({ threads }) };
  if (choice === 'webgpu') {
    const found = await nodeGpuDevice();
    if (typeof found === 'string') throw new Error(`the webgpu backend is not available: ${found}`);
    return { backend: await WebGpuBackend.create(found) };
  }
  const blas = loadBlas();
  if (typeof blas === 'string') {
    if (choice === 'native') throw new Error(`the native backend is not available: ${blas}`);
    return { backend: await WasmBackend.create({ threads }), fallback: `${blas}; running the wasm backend` };
  }
  const dnnl = loadDnnl();
  return { backend: await createNativeBackend({ threads, blas, ...(typeof dnnl === 'string' ? {} : { dnnl }) }) };
}
