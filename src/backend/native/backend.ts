/**
 * Choosing a backend in Node: `native` is the wasm backend with its GEMMs in the system's BLAS
 * (the fastest where OpenBLAS is installed), `wasm` the portable one, `reference` the oracle.
 * `auto` takes native when its library is found and says why not otherwise.
 */
import type { Backend } from '../backend.js';
import { ReferenceBackend } from '../reference/backend.js';
import { WasmBackend } from '../wasm/backend.js';
import { loadBlas } from './blas.js';

export const BACKENDS = ['auto', 'native', 'wasm', 'reference'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export interface ChosenBackend {
  backend: Backend;
  /** Why `auto` fell back to wasm, when it did. */
  fallback?: string;
}

export async function createBackend(choice: BackendChoice, threads: number): Promise<ChosenBackend> {
  if (choice === 'reference') return { backend: new ReferenceBackend() };
  if (choice === 'wasm') return { backend: await WasmBackend.create({ threads }) };
  const blas = loadBlas();
  if (typeof blas === 'string') {
    if (choice === 'native') throw new Error(`the native backend is not available: ${blas}`);
    return { backend: await WasmBackend.create({ threads }), fallback: `${blas}; running the wasm backend` };
  }
  return { backend: await WasmBackend.create({ threads, blas }) };
}
