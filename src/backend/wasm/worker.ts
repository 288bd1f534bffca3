/** A wasm backend worker thread: instantiates the kernel module on the shared memory and serves tasks. */
import v8 from 'node:v8';
import { workerData } from 'node:worker_threads';
import type { KernelExports } from './exports.js';
import { serve, type SharedControl } from './threads.js';

const { module, memory, shared, thread } = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory; shared: SharedControl; thread: number };
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('wasm abort'); } } });
serve(instance.exports as unknown as KernelExports, shared, thread);
