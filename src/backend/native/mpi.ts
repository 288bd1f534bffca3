/**
 * MPI through koffi, for runs across processes and machines: the process's rank and the world's
 * size, collective sums and broadcasts in place (on wasm memory too: no copy), a barrier, and abort,
 * on Open MPI or a library of the MPICH ABI — the one the launcher belongs to.
 */
import { launchedByMpi, launchedJob } from '../../config.js';
import { type NativeLibrary, openLibrary } from './ffi.js';

export { launchedByMpi };

export type MpiArray = Float32Array | Float64Array | Int32Array;

export interface Mpi {
  readonly rank: number;
  readonly size: number;
  /** The library loaded, and whose it is (Open MPI, or MPICH's ABI). */
  readonly path: string;
  readonly flavour: string;
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

/** How a library names MPI's handles. Open MPI's are the addresses of its exported objects, found
 * with koffi's `symbol`, and MPI_IN_PLACE is the address 1; the MPICH ABI's (MPICH, Intel MPI,
 * Cray MPICH, MVAPICH) are integers fixed by its mpi.h, and MPI_IN_PLACE is the address −1. */
interface Abi {
  name: string;
  libraries: string[];
  /** The C type of a communicator, datatype or operation handle in its functions. */
  handle: 'void *' | 'int';
  handles(lib: NativeLibrary): { world: unknown; f32: unknown; f64: unknown; i32: unknown; sum: unknown; max: unknown };
  inPlace: bigint;
}

const OPEN_MPI: Abi = {
  name: 'Open MPI',
  libraries: ['libmpi.so.40'],
  handle: 'void *',
  handles: (lib) => {
    const h = (name: string) => lib.symbol(`ompi_mpi_${name}`, 'char');
    return { world: h('comm_world'), f32: h('float'), f64: h('double'), i32: h('int'), sum: h('op_sum'), max: h('op_max') };
  },
  inPlace: 1n,
};

const MPICH: Abi = {
  name: 'MPICH',
  libraries: ['libmpich.so.12', 'libmpi.so.12'],
  handle: 'int',
  handles: () => ({ world: 0x44000000, f32: 0x4c00040a, f64: 0x4c00080b, i32: 0x4c000405, sum: 0x58000003, max: 0x58000001 }),
  inPlace: 0xffffffffffffffffn,
};

function open(): Mpi | string {
  if (!launchedByMpi())
    return 'this process was not started by an MPI launcher (run it under mpirun, mpiexec or srun, e.g. mpirun -np 2 npx alexnet …)';
  // the library must be the launcher's: Open MPI's mpirun sets OMPI_*, MPICH's Hydra and Slurm PMI_*
  const abis = launchedJob().openMpi ? [OPEN_MPI, MPICH] : [MPICH, OPEN_MPI];
  const found = openLibrary('MPI', [...abis.flatMap((abi) => abi.libraries), 'libmpi.so'], 'ALEXNET_MPI', 'openmpi-bin or mpich');
  if (typeof found === 'string') return found;
  const { lib, path } = found;
  const version = libraryVersion(lib);
  const abi = /Open MPI/i.test(version) ? OPEN_MPI : /MPICH|Intel|MVAPICH|CRAY/i.test(version) ? MPICH : undefined;
  if (!abi) return `${path} is neither Open MPI nor of the MPICH ABI (it says ${JSON.stringify(version.slice(0, 80))})`;
  const { world, f32, f64, i32, sum, max } = abi.handles(lib);
  const h = abi.handle;
  const init = lib.func('int MPI_Init(void *argc, void *argv)');
  const commRank = lib.func(`int MPI_Comm_rank(${h} comm, _Out_ int *rank)`);
  const commSize = lib.func(`int MPI_Comm_size(${h} comm, _Out_ int *size)`);
  const allreduce = lib.func(`int MPI_Allreduce(void *send, void *recv, int count, ${h} type, ${h} op, ${h} comm)`);
  const bcast = lib.func(`int MPI_Bcast(void *buffer, int count, ${h} type, int root, ${h} comm)`);
  const barrier = lib.func(`int MPI_Barrier(${h} comm)`);
  const abort = lib.func(`int MPI_Abort(${h} comm, int code)`);
  const finalize = lib.func('int MPI_Finalize()');
  const check = (what: string, code: unknown) => {
    if (code !== 0) throw new Error(`MPI: ${what} failed with error ${String(code)}`);
  };
  check('MPI_Init', init(null, null));
  const rank = [0],
    size = [0];
  check('MPI_Comm_rank', commRank(world, rank));
  check('MPI_Comm_size', commSize(world, size));
  const typeOf = (values: MpiArray) => (values instanceof Float32Array ? f32 : values instanceof Float64Array ? f64 : i32);
  let finalized = false;
  const reduce = (values: MpiArray, op: unknown) =>
    inPieces(values, (piece) => check('MPI_Allreduce', allreduce(abi.inPlace, piece, piece.length, typeOf(piece), op, world)));
  return {
    rank: rank[0]!,
    size: size[0]!,
    path,
    flavour: abi.name,
    allreduceSum: (values) => reduce(values, sum),
    allreduceMax: (values) => reduce(values, max),
    broadcast: (values, root) => inPieces(values, (piece) => check('MPI_Bcast', bcast(piece, piece.length, typeOf(piece), root, world))),
    barrier: () => check('MPI_Barrier', barrier(world)),
    abort: (code) => void abort(world, code),
    finalize: () => {
      if (!finalized) check('MPI_Finalize', finalize());
      finalized = true;
    },
  };
}

/** MPI_Get_library_version's text (callable before MPI_Init), or '' where the library lacks it. */
function libraryVersion(lib: NativeLibrary): string {
  try {
    const text = Buffer.alloc(8192); // MPICH's MPI_MAX_LIBRARY_VERSION_STRING, the larger
    const length = [0];
    lib.func('int MPI_Get_library_version(_Out_ uint8_t *version, _Out_ int *length)')(text, length);
    return text.subarray(0, Math.min(length[0]!, text.length)).toString('utf8');
  } catch {
    return '';
  }
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
