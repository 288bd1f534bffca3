/** A wasm backend worker thread (Node worker_threads or a browser's module Worker): instantiates
 * the kernel module on the shared memory, reports ready, and serves tasks until terminated. */
import type { KernelExports } from './exports.js';
import { isNode, type WorkerReport } from './platform.js';
import { serve, type WorkerData } from './threads.js';

async function receive(): Promise<{ data: WorkerData; report: (r: WorkerReport) => void }> {
  if (isNode) {
    const { workerData, parentPort } = await import('node:worker_threads');
    return { data: workerData as WorkerData, report: (r) => parentPort!.postMessage(r) };
  }
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<WorkerData>) => void) | null; postMessage(r: WorkerReport): void };
  const data = await new Promise<WorkerData>((resolve) => {
    scope.onmessage = (e) => resolve(e.data);
  });
  return { data, report: (r) => scope.postMessage(r) };
}

const { data, report } = await receive();
let exports: KernelExports;
try {
  const instance = new WebAssembly.Instance(data.module, {
    env: {
      memory: data.memory,
      abort: () => {
        throw new Error('wasm abort');
      },
    },
  });
  exports = instance.exports as unknown as KernelExports;
} catch (error) {
  report({ error: `wasm worker ${data.thread}: ${String(error)}` });
  throw error;
}
report({ ready: true });
serve(exports, data.shared, data.thread);
