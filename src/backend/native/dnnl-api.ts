/**
 * oneDNN 2.x's C API as the native backend calls it through koffi: the constants of
 * dnnl_types.h it uses, the functions it binds, the CPU engine and stream, and its errors.
 * dnnl.ts plans and runs convolutions on top of this.
 */
import type { Koffi, NativeLibrary } from './ffi.js';

export const CANDIDATES = ['libdnnl.so.2', '/usr/lib/x86_64-linux-gnu/libdnnl.so.2', '/usr/lib/aarch64-linux-gnu/libdnnl.so.2'];

// dnnl_types.h (oneDNN 2.x)
const CPU = 1;
export const F32 = 3,
  TAG_ANY = 1,
  TAG_A = 2,
  TAG_ABCD = 5,
  TAG_ABCDE = 7,
  TAG_ACDB = 20,
  TAG_BLOCKED: Record<number, number> = { 4: 75, 8: 93, 16: 69 }, // aBcd4b, aBcd8b, aBcd16b: nChw4c, nChw8c, nChw16c
  FORWARD_TRAINING = 64,
  DIRECT = 1,
  QUERY_SRC = 129,
  QUERY_DIFF_SRC = 130,
  QUERY_WEIGHTS = 131,
  QUERY_DIFF_WEIGHTS = 132,
  QUERY_DST = 133,
  QUERY_DIFF_DST = 134,
  QUERY_IMPLEMENTATION = 8,
  ARG = { SRC: 1, DST: 17, WEIGHTS: 33, BIAS: 41, DIFF_SRC: 129, DIFF_DST: 145, DIFF_WEIGHTS: 161, DIFF_BIAS: 169, FROM: 1, TO: 17 };
/** sizeof(dnnl_memory_desc_t) is 696 and sizeof(dnnl_convolution_desc_t) 5,976 in 2.x: room for both. */
export const MEMORY_DESC_BYTES = 1024,
  CONVOLUTION_DESC_BYTES = 8192;
/** Reorders of tensors under 2 MiB run on one thread. Waking OpenMP's second (sleeping) thread took
 * ~130–150 µs on the 2-vCPU VM, more than it saves below ~4 MB (NCHW → nChw8c, alternating 1 and 2
 * threads in one C process: 547 KB 54 against 203 µs, 2.2 MB 195 / 233, 4.4 MB 492 / 466, 35 MB
 * 6.8 / 4.8 ms). 2 MiB holds every reorder of the AlexNets at batch 1 (at most 1.2 MB), where it
 * pays, and caps what a machine with many cheap-to-wake cores loses (~0.2 ms a reorder). */
export const SERIAL_REORDER_BYTES = 2 << 20;

export type Handle = unknown;

/** oneDNN's `unimplemented` status: no kernel for these shapes (the caller runs another route). */
export const UNIMPLEMENTED = 3;

export class DnnlError extends Error {
  constructor(
    what: string,
    readonly status: unknown,
  ) {
    super(`oneDNN ${what} failed (status ${String(status)})`);
  }
}

export type ExecArg = { arg: number; memory: Handle };

export function exec(...pairs: (readonly [number, Handle])[]): ExecArg[] {
  return pairs.map(([arg, memory]) => ({ arg, memory }));
}

/** The library's functions, its CPU engine and stream; throws for a version other than 2.x. */
export function bindLibrary(koffi: Koffi, lib: NativeLibrary) {
  koffi.pointer('dnnl_handle', koffi.opaque('dnnl_object'));
  koffi.struct('dnnl_exec_arg_t', { arg: 'int', memory: 'dnnl_handle' });
  koffi.struct('dnnl_version_t', { major: 'int', minor: 'int', patch: 'int', hash: 'const char *', cpu: 'uint', gpu: 'uint' });
  const version = koffi.decode(lib.func('const dnnl_version_t *dnnl_version()')(), 'dnnl_version_t') as Record<string, number>;
  if (version.major !== 2) throw new Error(`version ${version.major}.${version.minor}`);
  const api = {
    engine: lib.func('int dnnl_engine_create(_Out_ dnnl_handle *engine, int kind, size_t index)'),
    stream: lib.func('int dnnl_stream_create(_Out_ dnnl_handle *stream, dnnl_handle engine, uint flags)'),
    wait: lib.func('int dnnl_stream_wait(dnnl_handle stream)'),
    describe: lib.func('int dnnl_memory_desc_init_by_tag(_Inout_ uint8_t *md, int ndims, const int64_t *dims, int type, int tag)'),
    window: lib.func(
      'int dnnl_memory_desc_init_submemory(_Inout_ uint8_t *md, const uint8_t *parent, const int64_t *dims, const int64_t *at)',
    ),
    forward: lib.func(
      'int dnnl_dilated_convolution_forward_desc_init(_Inout_ uint8_t *desc, int prop, int alg, const uint8_t *src, ' +
        'const uint8_t *weights, const uint8_t *bias, const uint8_t *dst, const int64_t *strides, const int64_t *dilates, ' +
        'const int64_t *padL, const int64_t *padR)',
    ),
    backwardData: lib.func(
      'int dnnl_dilated_convolution_backward_data_desc_init(_Inout_ uint8_t *desc, int alg, const uint8_t *diffSrc, ' +
        'const uint8_t *weights, const uint8_t *diffDst, const int64_t *strides, const int64_t *dilates, ' +
        'const int64_t *padL, const int64_t *padR)',
    ),
    backwardWeights: lib.func(
      'int dnnl_dilated_convolution_backward_weights_desc_init(_Inout_ uint8_t *desc, int alg, const uint8_t *src, ' +
        'const uint8_t *diffWeights, const uint8_t *diffBias, const uint8_t *diffDst, const int64_t *strides, ' +
        'const int64_t *dilates, const int64_t *padL, const int64_t *padR)',
    ),
    primitiveDesc: lib.func(
      'int dnnl_primitive_desc_create(_Out_ dnnl_handle *pd, const uint8_t *desc, dnnl_handle attr, dnnl_handle engine, dnnl_handle hint)',
    ),
    implementation: lib.func('int dnnl_primitive_desc_query(dnnl_handle pd, int what, int index, _Out_ const char **name)'),
    queryMd: lib.func('dnnl_handle dnnl_primitive_desc_query_md(dnnl_handle pd, int what, int index)'),
    primitive: lib.func('int dnnl_primitive_create(_Out_ dnnl_handle *primitive, dnnl_handle pd)'),
    memory: lib.func('int dnnl_memory_create(_Out_ dnnl_handle *memory, const void *md, dnnl_handle engine, intptr_t handle)'),
    setHandle: lib.func('int dnnl_memory_set_data_handle(dnnl_handle memory, intptr_t handle)'),
    size: lib.func('size_t dnnl_memory_desc_get_size(const void *md)'),
    equal: lib.func('int dnnl_memory_desc_equal(const void *a, const void *b)'),
    reorder: lib.func(
      'int dnnl_reorder_primitive_desc_create(_Out_ dnnl_handle *pd, const void *src, dnnl_handle srcEngine, ' +
        'const void *dst, dnnl_handle dstEngine, dnnl_handle attr)',
    ),
    execute: lib.func('int dnnl_primitive_execute(dnnl_handle primitive, dnnl_handle stream, int nargs, const dnnl_exec_arg_t *args)'),
  };
  const gomp = koffi.load('libgomp.so.1').func('void omp_set_num_threads(int)');
  const check = (what: string, status: unknown) => {
    if (status !== 0) throw new DnnlError(what, status);
  };
  const out = (what: string, call: (slot: Handle[]) => unknown): Handle => {
    const slot: Handle[] = [null];
    check(what, call(slot));
    return slot[0];
  };
  const engine = out('engine', (s) => api.engine(s, CPU, 0));
  const stream = out('stream', (s) => api.stream(s, engine, 0));
  return { api, gomp, check, out, engine, stream, version: `${version.major}.${version.minor}.${version.patch}` };
}
