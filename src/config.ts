/**
 * Every environment variable the engine reads, and those it sets for the libraries it loads, in
 * one place: name, default and meaning (README's table is this list). Read at each call, so tests
 * can change them at run time; in a browser, where there is no environment, each has its default.
 */
export const ENVIRONMENT = {
  ALEXNET_BLAS: "the OpenBLAS library the native backend loads (a path); default: the first of Debian's builds found",
  ALEXNET_DNNL: "`off`: no oneDNN (convolutions as im2col + OpenBLAS); a path: that oneDNN 2.x; default: Debian's libdnnl2",
  ALEXNET_DNNL_LAYOUT: "`nchw`: every tensor between layers in NCHW; default: convolutions leave oneDNN's blocked layout",
  ALEXNET_DNNL_STRIPS: '`on`/`off`: small maps side by side in strips; default: on 8-channel blocks (AVX2) only',
  ALEXNET_MPI:
    "the MPI library distributed runs load (a path); default: the launcher's — Open MPI's libmpi.so.40 under its mpirun, else MPICH's libmpich.so.12",
  ALEXNET_FAULT_KILL_IN_WRITE: 'tests: SIGKILL the process half-way through its n-th atomic file write',
  OPENBLAS_THREAD_TIMEOUT: "set to 18 unless given: OpenBLAS's threads stop spinning soon after a call (read when it loads)",
  OMP_WAIT_POLICY: "set to `passive` unless given: oneDNN's OpenMP threads do not spin between calls",
  EGL_PLATFORM: "set to `surfaceless` unless given: Dawn's OpenGL ES adapter needs no display",
} as const;

export type EnvironmentVariable = keyof typeof ENVIRONMENT;

const environment = (): Record<string, string | undefined> => (typeof process === 'undefined' ? {} : process.env);

/** A variable's value, undefined when unset or empty. */
export function readEnvironment(name: EnvironmentVariable): string | undefined {
  return environment()[name] || undefined;
}

/** Sets a variable another library reads, unless the user set it. */
export function defaultEnvironment(name: 'OPENBLAS_THREAD_TIMEOUT' | 'OMP_WAIT_POLICY' | 'EGL_PLATFORM', value: string): void {
  if (typeof process !== 'undefined') process.env[name] ??= value;
}

/** Variables an MPI launcher sets in each process it starts (mpirun, mpiexec, srun with PMIx or
 * PMI), read only to tell a launched process from one started by hand. */
const MPI_LAUNCHER_VARIABLES = ['OMPI_COMM_WORLD_SIZE', 'PMIX_RANK', 'PMI_SIZE', 'PMI_RANK'];

/** Whether this process was started by an MPI launcher. */
export function launchedByMpi(env: Record<string, string | undefined> = environment()): boolean {
  return MPI_LAUNCHER_VARIABLES.some((name) => env[name] !== undefined);
}

/** What the launcher says of the job before MPI starts: the number of processes, this one's rank,
 * how many of them share this machine (Open MPI's, MPICH's Hydra's, or Slurm's variables), and
 * whether the launcher is Open MPI's. */
export function launchedJob(env: Record<string, string | undefined> = environment()): {
  size: number;
  rank: number;
  local: number;
  openMpi: boolean;
} {
  const first = (...names: string[]) => Number(names.map((n) => env[n]).find((v) => v !== undefined && /^\d+$/.test(v)) ?? NaN);
  const size = first('OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'SLURM_NTASKS');
  const local = first('OMPI_COMM_WORLD_LOCAL_SIZE', 'MPI_LOCALNRANKS', 'SLURM_NTASKS_PER_NODE');
  return {
    size: Number.isNaN(size) ? 1 : size,
    rank: first('OMPI_COMM_WORLD_RANK', 'PMIX_RANK', 'PMI_RANK', 'SLURM_PROCID') || 0,
    local: Number.isNaN(local) ? 1 : local,
    openMpi: env.OMPI_COMM_WORLD_SIZE !== undefined,
  };
}

/** Tensors between oneDNN's layers stay in its blocked layouts (`ALEXNET_DNNL_LAYOUT`). */
export const keepsLayouts = (): boolean => readEnvironment('ALEXNET_DNNL_LAYOUT') !== 'nchw';

/** `ALEXNET_DNNL_STRIPS`: forced on or off, or left to the CPU. */
export const stripsSetting = (): 'on' | 'off' | 'auto' => {
  const value = readEnvironment('ALEXNET_DNNL_STRIPS');
  return value === 'on' || value === 'off' ? value : 'auto';
};
