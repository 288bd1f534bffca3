/**
 * MPI through koffi, for runs across processes and machines: the process's rank and the world's
 * size, collective sums and broadcasts in place (on wasm memory too: no copy), a barrier, and abort.
 * Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are the addresses of its exported
 * objects, found with koffi's `symbol`; MPI_IN_PLACE is the address 1 (Open MPI's mpi.h).
 */
import { launchedByMpi } from '../../config.js';
import { openLibrary } from './ffi.js';

export { launchedByMpi };

export type MpiArray = Float32Array | Float64Array | Int32Array;

export interface Mpi {
  readonly rank: number;
  readonly size: number;
  /** The library loaded. */
  readonly path: string;
  /** Every rank's `values` summed, into every rank's `values`. */
  allreduceSum(values: MpiArray): void;
  /** The largest of every rank's `values`, elementwise, into every rank's. */
  allreduceMax(values: MpiArray): void;
  /** Rank `root`'s `values` into every rank's. */
  broadcast(values: MpiArray, root: number): void;
  barrier(): void;
  /** Ends every rank of the job with `code`. */
  abort(code: number): void;
  finalize(): void;
}

let opened: Mpi | string | undefined;

/** MPI, initialised once per process, or one line saying why it cannot be. */
export function loadMpi(): Mpi | string {
  opened ??= open();
  return opened;
}

function open(): Mpi | string {
  if (!launchedByMpi())
    return 'this process was not started by an MPI launcher (run it under mpirun, mpiexec or srun, e.g. mpirun -np 2 npx alexnet …)';
  const found = openLibrary('MPI', ['libmpi.so.40', 'libmpi.so'], 'ALEXNET_MPI', 'openmpi-bin');
  if (typeof found === 'string') return found;
  const { lib, path } = found;
  let handle: (name: string) => unknown;
  try {
    handle = (name: string) => lib.symbol(name, 'char');
    handle('ompi_mpi_comm_world');
  } catch {
    return `${path} is not Open MPI (no ompi_mpi_comm_world): name Open MPI's libmpi.so.40 with ALEXNET_MPI`;
  }
  const world = handle('ompi_mpi_comm_world');
  const types = { f32: handle('ompi_mpi_float'), f64: handle('ompi_mpi_double'), i32: handle('ompi_mpi_int') };
  const ops = { sum: handle('ompi_mpi_op_sum'), max: handle('ompi_mpi_op_max') };
  const init = lib.func('int MPI_Init(void *argc, void *argv)');
  const commRank = lib.func('int MPI_Comm_rank(void *comm, _Out_ int *rank)');
  const commSize = lib.func('int MPI_Comm_size(void *comm, _Out_ int *size)');
  const allreduce = lib.func('int MPI_Allreduce(void *send, void *recv, int count, void *type, void *op, void *comm)');
  const bcast = lib.func('int MPI_Bcast(void *buffer, int count, void *type, int root, void *comm)');
  const barrier = lib.func('int MPI_Barrier(void *comm)');
  const abort = lib.func('int MPI_Abort(void *comm, int code)');
  const finalize = lib.func('int MPI_Finalize()');
  const inPlace = 1n;
  const check = (what: string, code: unknown) => {
    if (code !== 0) throw new Error(`MPI: ${what} failed with error ${String(code)}`);
  };
  check('MPI_Init', init(null, null));
  const rank = [0],
    size = [0];
  check('MPI_Comm_rank', commRank(world, rank));
  check('MPI_Comm_size', commSize(world, size));
  const typeOf = (values: MpiArray) =>
    values instanceof Float32Array ? types.f32 : values instanceof Float64Array ? types.f64 : types.i32;
  let finalized = false;
  const reduce = (values: MpiArray, op: unknown) =>
    inPieces(values, (piece) => check('MPI_Allreduce', allreduce(inPlace, piece, piece.length, typeOf(piece), op, world)));
  return {
    rank: rank[0]!,
    size: size[0]!,
    path,
    allreduceSum: (values) => reduce(values, ops.sum),
    allreduceMax: (values) => reduce(values, ops.max),
    broadcast: (values, root) => inPieces(values, (piece) => check('MPI_Bcast', bcast(piece, piece.length, typeOf(piece), root, world))),
    barrier: () => check('MPI_Barrier', barrier(world)),
    abort: (code) => void abort(world, code),
    finalize: () => {
      if (!finalized) check('MPI_Finalize', finalize());
      finalized = true;
    },
  };
}

/** Values per collective call. Open MPI takes a scratch buffer the size of the message for each
 * call; past glibc's mmap threshold (32 MiB at most) that is fresh pages, faulted in every time:
 * 2 ranks here summed 151 MiB at 0.38 GiB/s in 32 MiB calls, 2.6 in 16 MiB, 4.0 in 4 MiB, 3.6 in
 * 1 MiB. */
const PIECE = 1 << 20;

function inPieces(values: MpiArray, call: (piece: MpiArray) => void): void {
  if (values.length <= PIECE) return call(values);
  for (let from = 0; from < values.length; from += PIECE) call(values.subarray(from, Math.min(values.length, from + PIECE)));
}
