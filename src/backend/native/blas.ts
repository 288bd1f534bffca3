/**
 * The system's optimised BLAS, called through koffi (an FFI library whose npm package ships its
 * prebuilt binaries): `cblas_sgemm` straight on views of the wasm backend's memory, so nothing is
 * copied. OpenBLAS (Debian's `libopenblas0-pthread`) is looked for first; `ALEXNET_BLAS` names
 * another library. The generic reference BLAS is refused: it is slower than our wasm GEMM.
 */
import { openLibrary } from './ffi.js';
import { defaultEnvironment } from '../../config.js';

const ROW_MAJOR = 101,
  NO_TRANS = 111,
  TRANS = 112;

/** C(M×N) = alpha·op(A)·op(B) + beta·C, row-major, on views starting at each matrix's first element. */
export type Sgemm = (
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

export interface Blas {
  /** The library's path and its own description (OpenBLAS's build configuration). */
  library: string;
  config: string;
  sgemm: Sgemm;
  /** The threads its GEMMs use. */
  setThreads(threads: number): void;
}

const CANDIDATES = [
  'libopenblas.so.0',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0',
  'libopenblas.dylib',
  '/opt/homebrew/opt/openblas/lib/libopenblas.dylib',
  'libopenblas.dll',
];

let cached: Blas | string | undefined;

/** The BLAS, or why there is none (koffi missing, no library found, a reference BLAS). */
export function loadBlas(): Blas | string {
  cached ??= open();
  return cached;
}

function open(): Blas | string {
  // OpenBLAS's threads spin for 2^28 cycles (~0.1 s) after each call, on the cores the wasm threads
  // need for the layers between GEMMs: the paper net's batch-1 inference ran 25–28 images/s so,
  // 33–37 with 2^18 (read when the library loads; a value set by the user wins). Training: no loss.
  defaultEnvironment('OPENBLAS_THREAD_TIMEOUT', '18');
  const found = openLibrary('OpenBLAS', CANDIDATES, 'ALEXNET_BLAS', 'libopenblas0-pthread');
  if (typeof found === 'string') return found;
  const { lib, path } = found;
  let config: string;
  let setThreads: (threads: number) => void;
  try {
    config = String(lib.func('const char *openblas_get_config()')());
    const set = lib.func('void openblas_set_num_threads(int)');
    setThreads = (threads) => set(threads);
  } catch {
    return `${path} is not OpenBLAS (no openblas_get_config): a reference BLAS would be slower than the wasm GEMM`;
  }
  const cblas = lib.func(
    'void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)',
  );
  const sgemm: Sgemm = (transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc) =>
    cblas(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  return { library: path, config, sgemm, setThreads };
}
