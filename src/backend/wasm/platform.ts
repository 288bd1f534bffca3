/**
 * What the wasm backend needs from its host, for Node.js and for browsers: the kernel module's
 * bytes, the number of cores, worker threads, and whether this thread may block in Atomics.wait.
 * Node's modules are imported only when running in Node, so the same files load in a browser
 * without a bundler.
 */

/** A kernel build: with or without relaxed SIMD, on shared (threads) or unshared memory. */
export interface WasmVariant {
  relaxed: boolean;
  shared: boolean;
}

/** Messages a worker posts to the thread that started it. */
export type WorkerReport = { ready: true } | { error: string };

export interface WorkerHandle {
  terminate(): Promise<unknown>;
}

export interface Platform {
  /** The compiled kernels (dist/wasm/kernels-….wasm beside this package). */
  wasmBytes(variant: WasmVariant): Promise<Uint8Array<ArrayBuffer>>;
  cores(): number;
  /** Whether memory can be shared with workers: in browsers only under cross-origin isolation. */
  canShareMemory(): boolean;
  /** Whether this thread may block in Atomics.wait (not a browser's main thread). */
  canBlock(): boolean;
  /** Starts a kernel worker (worker.js) and reports what it posts back. */
  startWorker(data: unknown, onReport: (report: WorkerReport) => void): WorkerHandle;
}

export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Where the kernels and the worker script are: beside this module in the package, unless a page's
 * bundle moved them (setWasmPaths). */
const paths = { kernels: new URL('../../../wasm/', import.meta.url), worker: new URL('./worker.js', import.meta.url) };

/** For a bundled page: the folder holding the `kernels-*.wasm` files and the URL of the bundled
 * kernel worker (src/backend/wasm/worker.ts), relative to the page. */
export function setWasmPaths(where: { kernels?: string | URL; worker?: string | URL }): void {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  if (where.kernels !== undefined) paths.kernels = new URL(String(where.kernels).replace(/\/?$/, '/'), base);
  if (where.worker !== undefined) paths.worker = new URL(where.worker, base);
}

function wasmUrl({ relaxed, shared }: WasmVariant): URL {
  return new URL(`kernels-${relaxed ? 'relaxed' : 'simd'}${shared ? '' : '-unshared'}.wasm`, paths.kernels);
}

async function nodePlatform(): Promise<Platform> {
  const [{ readFile }, { availableParallelism }, { default: v8 }, { Worker }] = await Promise.all([
    import('node:fs/promises'),
    import('node:os'),
    import('node:v8'),
    import('node:worker_threads'),
  ]);
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20; later versions have it on
  return {
    async wasmBytes(variant) {
      try {
        return new Uint8Array(await readFile(wasmUrl(variant)));
      } catch (error) {
        throw new Error(
          `cannot load the wasm kernels ${wasmUrl(variant).pathname} (built by \`npm run build\`): ${(error as Error).message}`,
          { cause: error },
        );
      }
    },
    cores: () => availableParallelism(),
    canShareMemory: () => true,
    canBlock: () => true,
    startWorker(data, onReport) {
      const worker = new Worker(paths.worker, { workerData: data });
      worker.on('message', (report: WorkerReport) => {
        worker.unref(); // once started, an idle pool must not keep the process alive
        onReport(report);
      });
      worker.on('error', (error) => onReport({ error: String(error) }));
      return { terminate: () => worker.terminate() };
    },
  };
}

function webPlatform(): Platform {
  const scope = globalThis as unknown as {
    crossOriginIsolated?: boolean;
    navigator?: { hardwareConcurrency?: number };
    WorkerGlobalScope?: unknown;
  };
  return {
    async wasmBytes(variant) {
      const response = await fetch(wasmUrl(variant));
      if (!response.ok) throw new Error(`cannot load ${wasmUrl(variant).href}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
    cores: () => scope.navigator?.hardwareConcurrency ?? 1,
    canShareMemory: () => typeof SharedArrayBuffer !== 'undefined' && scope.crossOriginIsolated !== false,
    canBlock: () => typeof scope.WorkerGlobalScope !== 'undefined',
    startWorker(data, onReport) {
      const worker = new Worker(paths.worker, { type: 'module' });
      worker.onmessage = (event: MessageEvent<WorkerReport>) => onReport(event.data);
      worker.onerror = (event) => onReport({ error: event.message || 'the worker script failed to load' });
      worker.postMessage(data);
      return { terminate: async () => worker.terminate() };
    },
  };
}

let current: Promise<Platform> | undefined;

export function platform(): Promise<Platform> {
  current ??= isNode ? nodePlatform() : Promise.resolve(webPlatform());
  return current;
}
