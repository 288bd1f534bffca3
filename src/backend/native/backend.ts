/**
 * The native backend: the wasm backend (its memory, threads and kernels) with the GEMMs of the
 * convolutions and fully-connected layers in the system's BLAS, and its convolutions in oneDNN
 * where that is installed too, called through koffi on the same memory (routes.ts), tensors kept
 * in oneDNN's blocked layouts between layers (layouts.ts). It plugs into the wasm backend's
 * extension point (wasm/host.ts); nothing portable imports it.
 */
import { WasmBackend } from '../wasm/backend.js';
import type { HostBuffer, WasmExtension } from '../wasm/host.js';
import type { Blas } from './blas.js';
import type { Dnnl } from './dnnl.js';
import { Layouts, type Tensor } from './layouts.js';
import { nativeKernels, type NativeKernels } from './routes.js';

export interface NativeOptions {
  /** Threads including the calling one (the wasm pool's, the BLAS's and oneDNN's). */
  threads: number;
  /** The GEMMs' BLAS (blas.ts's `loadBlas`). */
  blas: Blas;
  /** oneDNN for the convolutions; im2col + BLAS without it. */
  dnnl?: Dnnl;
  /** The smallest linear layers (in weights) whose GEMMs leave the wasm kernels. Default:
   * policy.ts's NATIVE_FROM. */
  nativeFrom?: { linearWeights: number };
}

/** The libraries a native backend runs on. */
export interface NativeExtension extends WasmExtension {
  readonly blas: Blas;
  readonly dnnl?: Dnnl;
}

export function nativeExtension(o: Omit<NativeOptions, 'threads'>): NativeExtension {
  let layouts: Layouts | undefined;
  return {
    name: 'native',
    blas: o.blas,
    ...(o.dnnl ? { dnnl: o.dnnl } : {}),
    setThreads(threads) {
      o.blas.setThreads(threads);
      o.dnnl?.setThreads(threads);
    },
    kernels(host, wasm) {
      if (o.dnnl) layouts = new Layouts(o.dnnl, (b) => host.view(b));
      return nativeKernels(host, o.blas, wasm as NativeKernels, o.nativeFrom, o.dnnl) as ReturnType<WasmExtension['kernels']>;
    },
    prepare: (kernel, params, buffers) => layouts?.prepare(kernel, params, buffers as Record<string, Tensor>),
    written: (b, offset, length) => layouts?.written(b as Tensor, offset, length),
    read: (b: HostBuffer) => ((b as Tensor).layout ? layouts!.read(b as Tensor) : undefined),
  };
}

export function createNativeBackend(o: NativeOptions): Promise<WasmBackend> {
  return WasmBackend.create({ threads: o.threads, extension: nativeExtension(o) });
}

/** The native libraries a backend runs on, if it is a native one. */
export function nativeOf(backend: unknown): NativeExtension | undefined {
  const extension = backend instanceof WasmBackend ? backend.extension : undefined;
  return extension?.name === 'native' ? (extension as NativeExtension) : undefined;
}
