/**
 * Runs lists of kernel tasks on the calling thread plus a pool of workers that share one
 * WebAssembly.Memory. Tasks are taken from a shared counter (so faster threads take more); each
 * executing thread appends its own column buffer and GEMM scratch pointers to tasks that want them.
 * The calling thread waits for the workers in Atomics.wait (or, on a browser's main thread, where
 * that is forbidden, by spinning): kernels stay synchronous.
 */
import { WASM_FUNCTIONS, type KernelExports, type WasmFunction } from './exports.js';
import type { Platform, WorkerHandle } from './platform.js';

// Control words (Int32Array over a SharedArrayBuffer).
const GENERATION = 0,
  PENDING = 1,
  NEXT = 2,
  COUNT = 3,
  FAILED = 4,
  STOP = 5;
const MAX_TASKS = 256;
const TASK_WIDTH = 20; // [function index, argument count, scratch wanted (0, 1 gemm, 2 col+gemm), ...arguments]

export interface Task {
  fn: WasmFunction;
  args: number[];
  /** Append this thread's GEMM scratch pointer ('gemm'), or its column buffer and GEMM scratch. */
  scratch?: 'gemm' | 'col+gemm';
}

export interface SharedControl {
  control: Int32Array;
  tasks: Float64Array;
  /** Per thread: column buffer and GEMM scratch byte offsets (float64: offsets reach 4 GiB). */
  scratch: Float64Array;
}

/** What a worker receives when it starts. */
export interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  shared: SharedControl;
  thread: number;
}

/** The control block; on plain ArrayBuffers when there is a single thread (memory not shareable). */
function createControl(threads: number): SharedControl {
  const Buffer = threads > 1 ? SharedArrayBuffer : ArrayBuffer;
  return {
    control: new Int32Array(new Buffer(4 * 8)),
    tasks: new Float64Array(new Buffer(8 * MAX_TASKS * TASK_WIDTH)),
    scratch: new Float64Array(new Buffer(8 * 2 * threads)),
  };
}

/** Takes tasks until none are left; shared by the main thread and the workers. */
export function drain(exports: KernelExports, { control, tasks, scratch }: SharedControl, thread: number): void {
  const count = Atomics.load(control, COUNT);
  for (let i = Atomics.add(control, NEXT, 1); i < count; i = Atomics.add(control, NEXT, 1)) {
    const at = i * TASK_WIDTH;
    const args = Array.from(tasks.subarray(at + 3, at + 3 + tasks[at + 1]!));
    if (tasks[at + 2] === 2) args.push(scratch[2 * thread]!);
    if (tasks[at + 2]) args.push(scratch[2 * thread + 1]!);
    exports[WASM_FUNCTIONS[tasks[at]!]!](...args);
  }
}

export class ThreadPool {
  private generation = 0;

  private constructor(
    readonly shared: SharedControl,
    private readonly exports: KernelExports,
    private readonly workers: WorkerHandle[],
    private readonly canBlock: boolean,
  ) {}

  /** All threads, the calling one included. */
  get size(): number {
    return this.workers.length + 1;
  }

  /** Threads that run kernels now, the calling one included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Starts threads − 1 workers and waits until each has instantiated the module: a browser may
   * not start a worker while the page's thread is blocked, so none may be started lazily. */
  static async start(
    threads: number,
    exports: KernelExports,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    platform: Platform,
  ): Promise<ThreadPool> {
    const shared = createControl(threads);
    const workers: WorkerHandle[] = [];
    const ready: Promise<void>[] = [];
    for (let thread = 1; thread < threads; thread++) {
      ready.push(
        new Promise((resolve, reject) => {
          const data: WorkerData = { module, memory, shared, thread };
          workers.push(platform.startWorker(data, (report) => ('error' in report ? reject(new Error(report.error)) : resolve())));
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      Atomics.store(shared.control, STOP, 1);
      await Promise.all(workers.map((w) => w.terminate()));
      throw error;
    }
    return new ThreadPool(shared, exports, workers, platform.canBlock());
  }

  /** Per-thread column buffer and GEMM scratch pointers (byte offsets). */
  setScratch(thread: number, col: number, scratch: number): void {
    this.shared.scratch[2 * thread] = col;
    this.shared.scratch[2 * thread + 1] = scratch;
  }

  run(taskList: Task[]): void {
    const { control, tasks } = this.shared;
    if (taskList.length > MAX_TASKS) throw new Error(`internal: ${taskList.length} tasks exceed the pool's ${MAX_TASKS}`);
    taskList.forEach((task, i) => {
      const at = i * TASK_WIDTH;
      if (task.args.length > TASK_WIDTH - 3) throw new Error(`internal: task ${task.fn} has too many arguments`);
      tasks[at] = WASM_FUNCTIONS.indexOf(task.fn);
      tasks[at + 1] = task.args.length;
      tasks[at + 2] = task.scratch === 'col+gemm' ? 2 : task.scratch === 'gemm' ? 1 : 0;
      tasks.set(task.args, at + 3);
    });
    Atomics.store(control, NEXT, 0);
    Atomics.store(control, COUNT, taskList.length);
    const helpers = taskList.length > 1 ? this.workers.length : 0;
    if (helpers > 0) {
      Atomics.store(control, PENDING, helpers);
      Atomics.store(control, GENERATION, ++this.generation);
      Atomics.notify(control, GENERATION);
    }
    drain(this.exports, this.shared, 0);
    if (helpers > 0) {
      for (let pending = Atomics.load(control, PENDING); pending !== 0; pending = Atomics.load(control, PENDING)) {
        if (this.canBlock) Atomics.wait(control, PENDING, pending);
      }
      if (Atomics.load(control, FAILED)) {
        Atomics.store(control, FAILED, 0);
        throw new Error('a wasm kernel failed in a worker thread (see its error above)');
      }
    }
  }

  terminate(): Promise<unknown> {
    Atomics.store(this.shared.control, STOP, 1);
    return Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The worker side: wait for a generation, drain, report. */
export function serve(exports: KernelExports, shared: SharedControl, thread: number): void {
  const { control } = shared;
  let seen = 0;
  for (;;) {
    // Re-check after every wake: a wait may return without a new generation (measured: with
    // OpenBLAS's threads running beside the pool, a worker woke twice for one generation, drained
    // nothing the second time, and its extra decrement left the caller waiting forever).
    while (Atomics.load(control, GENERATION) === seen && !Atomics.load(control, STOP)) Atomics.wait(control, GENERATION, seen);
    if (Atomics.load(control, STOP)) return;
    seen = Atomics.load(control, GENERATION);
    try {
      drain(exports, shared, thread);
    } catch (error) {
      console.error(`wasm worker ${thread}:`, error);
      Atomics.store(control, FAILED, 1);
    }
    if (Atomics.sub(control, PENDING, 1) === 1) Atomics.notify(control, PENDING);
  }
}
