/**
 * Data-parallel training over whole steps: one replica of the net per thread, each on its own
 * single-threaded wasm backend, each computing the gradients of its slice of the batch. The
 * gradients meet in shared memory; every replica adds them up in the same order and applies the
 * same SGD update, so the replicas' weights stay equal bit for bit without ever being sent. On
 * small nets this beats splitting every kernel over the threads, which waits for the slowest
 * thread at the end of each of the step's ~40 kernel calls (BENCHMARKS.md).
 *
 * The calling thread runs replica 0 and leads: it writes the batch slices, wakes the workers with a
 * command, computes its own slice, meets them at a barrier once the gradients are in, and then
 * reduces and updates like them. Gradient slots alternate between two sets by step parity, so a
 * replica still reading step s's slots never sees step s + 1's writes.
 */
import { Worker } from 'node:worker_threads';
import type { WasmBackend } from '../backend/wasm/backend.js';
import type { Net } from '../net/net.js';
import type { NetSpec } from '../net/spec.js';
import { Philox, type PhiloxState, streams } from '../random.js';
import { trainingRoles, type TrainingRoles } from '../net/roles.js';
import { type Learner, loadNet, type StepResult } from './learner.js';
import type { Sgd } from './sgd.js';

// Control words.
const GENERATION = 0,
  COMMAND = 1,
  ARRIVED = 2,
  DONE = 3,
  FAILED = 4;
const STEP = 1,
  LOAD = 2,
  REPORT = 3,
  STOP = 4;

/** Sizes of what the replicas exchange. */
export interface ReplicaLayout {
  replicas: number;
  /** Floats of one replica's images, labels and logits. */
  images: number;
  labels: number;
  logits: number;
  /** Floats of all parameters, in `net.params` order. */
  params: number;
}

/** What a worker needs to build its replica. */
export interface ReplicaSetup {
  spec: NetSpec;
  /** Images per replica. */
  batch: number;
  seed: number;
  init: string;
  momentum: number;
  weightDecay: number;
  index: number;
  layout: ReplicaLayout;
  control: SharedArrayBuffer;
  floats: SharedArrayBuffer;
}

/** Views over the shared buffers, the same on every thread. */
export class ReplicaMemory {
  readonly control: Int32Array;
  readonly x: Float32Array[] = [];
  readonly y: Float32Array[] = [];
  readonly logits: Float32Array[] = [];
  /** [parity][replica]: each replica's parameter gradients. */
  readonly slots: Float32Array[][] = [[], []];
  /** Per replica: its loss, then its dropout generator (seed, stream, drawn). Then the step's lr. */
  readonly scalars: Float64Array;

  constructor(
    readonly layout: ReplicaLayout,
    control: SharedArrayBuffer,
    floats: SharedArrayBuffer,
  ) {
    const { replicas, images, labels, logits, params } = layout;
    this.control = new Int32Array(control);
    this.scalars = new Float64Array(floats, 0, 4 * replicas + 1);
    let at = 8 * this.scalars.length;
    const take = (n: number) => {
      const view = new Float32Array(floats, at, n);
      at += 4 * n;
      return view;
    };
    for (let r = 0; r < replicas; r++) {
      this.x.push(take(images));
      this.y.push(take(labels));
      this.logits.push(take(logits));
    }
    for (const set of this.slots) for (let r = 0; r < replicas; r++) set.push(take(params));
  }

  static bytes({ replicas, images, labels, logits, params }: ReplicaLayout): number {
    return 8 * (4 * replicas + 1) + 4 * (replicas * (images + labels + logits) + 2 * replicas * params);
  }

  get lr(): number {
    return this.scalars[4 * this.layout.replicas]!;
  }

  set lr(value: number) {
    this.scalars[4 * this.layout.replicas] = value;
  }

  writeState(replica: number, state: PhiloxState): void {
    this.scalars.set([state.seed, state.stream, state.drawn], 4 * replica + 1);
  }

  readState(replica: number): PhiloxState {
    const [seed, stream, drawn] = this.scalars.subarray(4 * replica + 1, 4 * replica + 4);
    return { seed: seed!, stream: stream!, drawn: drawn! };
  }
}

/** One replica's part of a step, the same code on the leading thread and in the workers. */
export class Replica {
  private steps = 0;
  private readonly sum: Float32Array;
  private readonly roles: TrainingRoles;

  constructor(
    readonly net: Net,
    readonly sgd: Sgd,
    private readonly memory: ReplicaMemory,
    readonly index: number,
  ) {
    this.sum = new Float32Array(memory.layout.params);
    this.roles = trainingRoles(net);
  }

  /** Forward and backward on this replica's slice; its gradients go to this step's slot. */
  computeGradients(): void {
    const m = this.memory,
      r = this.index,
      { data, labels, loss, logits } = this.roles;
    this.net.setInput(data, m.x[r]!);
    this.net.setInput(labels, m.y[r]!);
    this.net.forward({ training: true });
    this.net.backward();
    const slot = m.slots[this.steps % 2]![r]!;
    let at = 0;
    for (const p of this.net.params) {
      slot.set(p.grad.readSync(), at);
      at += p.grad.size;
    }
    m.scalars[4 * r] = this.net.readSync(loss)[0]!;
    m.logits[r]!.set(this.net.readSync(logits));
  }

  /** Waits until every replica has written this step's gradients. */
  arrive(): void {
    const control = this.memory.control,
      target = this.memory.layout.replicas * ++this.steps;
    if (Atomics.add(control, ARRIVED, 1) + 1 === target) Atomics.notify(control, ARRIVED);
    else for (let v = Atomics.load(control, ARRIVED); v < target; v = Atomics.load(control, ARRIVED)) Atomics.wait(control, ARRIVED, v);
  }

  /** The mean of the replicas' gradients, added in replica order (the same sum everywhere), then SGD. */
  update(lr: number): void {
    const slots = this.memory.slots[(this.steps - 1) % 2]!,
      sum = this.sum;
    sum.set(slots[0]!);
    for (const slot of slots.slice(1)) for (let i = 0; i < sum.length; i++) sum[i] += slot[i]!;
    const scale = 1 / slots.length;
    for (let i = 0; i < sum.length; i++) sum[i] *= scale;
    let at = 0;
    for (const p of this.net.params) {
      p.grad.write(sum.subarray(at, at + p.grad.size));
      at += p.grad.size;
    }
    this.sgd.lr = lr;
    this.sgd.step();
  }

  /** Weights from slot set 0's first slot, momentum from its second, the generator from the scalars. */
  load(): void {
    const [params, velocities] = this.memory.slots[0]!;
    loadNet(
      this.net,
      this.sgd,
      splitParams(this.net, params!),
      Object.values(splitParams(this.net, velocities!)),
      this.memory.readState(this.index),
    );
  }

  /** A worker's loop: one command at a time until STOP. */
  serve(): void {
    const control = this.memory.control;
    let seen = 0;
    for (;;) {
      Atomics.wait(control, GENERATION, seen);
      seen = Atomics.load(control, GENERATION);
      const command = Atomics.load(control, COMMAND);
      if (command === STOP) return;
      const stepsBefore = this.steps;
      try {
        if (command === STEP) {
          const lr = this.memory.lr;
          this.computeGradients();
          this.arrive();
          this.update(lr);
        } else if (command === LOAD) {
          this.load();
        } else if (command === REPORT) {
          this.memory.writeState(this.index, this.net.randomState());
        }
      } catch (error) {
        console.error(`replica ${this.index}:`, error);
        Atomics.store(control, FAILED, 1);
        if (command === STEP && this.steps === stepsBefore) this.arrive(); // never leave the others at the barrier
      }
      Atomics.add(control, DONE, 1);
      Atomics.notify(control, DONE);
    }
  }
}

/** A flat array of all parameters, in `net.params` order, as views by name. */
function splitParams(net: Net, flat: Float32Array): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  let at = 0;
  for (const p of net.params) {
    out[p.name] = flat.subarray(at, at + p.value.size);
    at += p.value.size;
  }
  return out;
}

export interface ReplicaGroupOptions {
  spec: NetSpec;
  seed: number;
  init: string;
  replicas: number;
}

export class ReplicaGroup implements Learner {
  private issued = 0;
  private readonly lead: Replica;
  private readonly batchLogits: Float32Array;

  private constructor(
    readonly net: Net,
    readonly sgd: Sgd,
    private readonly backend: WasmBackend,
    private readonly memory: ReplicaMemory,
    private readonly workers: Worker[],
  ) {
    this.lead = new Replica(net, sgd, memory, 0);
    this.batchLogits = new Float32Array(memory.layout.replicas * memory.layout.logits);
  }

  get replicas(): number {
    return this.memory.layout.replicas;
  }

  /** Starts replicas 1…n−1 in worker threads, each a copy of `net` (replica 0, on `backend`) with
   * its weights and momentum, and a dropout generator of its own. */
  static async start(net: Net, sgd: Sgd, backend: WasmBackend, o: ReplicaGroupOptions): Promise<ReplicaGroup> {
    const [data, label] = net.inputNames;
    const layout: ReplicaLayout = {
      replicas: o.replicas,
      images: net.shapeOf(data!).reduce((a, b) => a * b),
      labels: net.shapeOf(label!).reduce((a, b) => a * b, 1),
      logits: net.shapeOf(trainingRoles(net).logits).reduce((a, b) => a * b),
      params: net.params.reduce((n, p) => n + p.value.size, 0),
    };
    const control = new SharedArrayBuffer(4 * 8),
      floats = new SharedArrayBuffer(ReplicaMemory.bytes(layout));
    const memory = new ReplicaMemory(layout, control, floats);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 1; index < o.replicas; index++) {
      const setup: ReplicaSetup = {
        spec: o.spec,
        batch: net.batch,
        seed: o.seed,
        init: o.init,
        momentum: sgd.momentum,
        weightDecay: sgd.weightDecay,
        index,
        layout,
        control,
        floats,
      };
      const worker = new Worker(new URL('./replica-worker.js', import.meta.url), { workerData: setup });
      workers.push(worker);
      ready.push(
        new Promise((resolve, reject) => {
          worker.once('message', (m: { ready?: true; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve()));
          worker.once('error', reject);
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw error;
    }
    const group = new ReplicaGroup(net, sgd, backend, memory, workers);
    const states = Array.from({ length: o.replicas }, (_, r) =>
      r === 0 ? net.randomState() : new Philox(o.seed, streams.replicaSteps(r)).state(),
    );
    group.load(await net.readParams(), await Promise.all(sgd.velocities.map((v) => v.read())), states);
    return group;
  }

  async step(x: Float32Array, y: Float32Array, lr: number): Promise<StepResult> {
    const m = this.memory,
      { images, labels, logits } = m.layout;
    if (x.length !== this.replicas * images || y.length !== this.replicas * labels)
      throw new Error(`internal: a batch of ${y.length} labels for ${this.replicas} replicas of ${labels}`);
    for (let r = 0; r < this.replicas; r++) {
      m.x[r]!.set(x.subarray(r * images, (r + 1) * images));
      m.y[r]!.set(y.subarray(r * labels, (r + 1) * labels));
    }
    m.lr = lr;
    this.command(STEP);
    this.backend.singleThreaded = true;
    try {
      this.lead.computeGradients();
      this.lead.arrive();
      this.checkWorkers();
      this.lead.update(lr);
    } finally {
      this.backend.singleThreaded = false;
    }
    let loss = 0;
    for (let r = 0; r < this.replicas; r++) {
      loss += m.scalars[4 * r]!;
      this.batchLogits.set(m.logits[r]!, r * logits);
    }
    return { loss: loss / this.replicas, logits: this.batchLogits };
  }

  randomStates(): PhiloxState[] {
    this.run(REPORT);
    return Array.from({ length: this.replicas }, (_, r) => (r === 0 ? this.net.randomState() : this.memory.readState(r)));
  }

  load(params: Record<string, ArrayLike<number>>, velocities: ArrayLike<number>[], randomStates: PhiloxState[]): void {
    if (randomStates.length !== this.replicas)
      throw new Error(`internal: ${randomStates.length} dropout generators for ${this.replicas} replicas`);
    this.sync();
    loadNet(this.net, this.sgd, params, velocities, randomStates[0]!); // first: it checks every name and size
    const [paramSlot, velocitySlot] = this.memory.slots[0]!;
    let at = 0;
    this.net.params.forEach((p, i) => {
      paramSlot!.set(params[p.name]!, at);
      velocitySlot!.set(velocities[i]!, at);
      at += p.value.size;
    });
    randomStates.forEach((s, r) => this.memory.writeState(r, s));
    this.run(LOAD);
  }

  async dispose(): Promise<void> {
    this.sync();
    this.command(STOP);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.sgd.dispose();
  }

  private command(code: number): void {
    const control = this.memory.control;
    Atomics.store(control, COMMAND, code);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    if (code !== STOP) this.issued++;
  }

  /** A command the workers finish before this returns. */
  private run(code: number): void {
    this.sync();
    this.command(code);
    this.sync();
  }

  /** Waits until the workers have finished every command issued. */
  private sync(): void {
    const control = this.memory.control,
      target = this.issued * (this.replicas - 1);
    for (let v = Atomics.load(control, DONE); v < target; v = Atomics.load(control, DONE)) Atomics.wait(control, DONE, v);
    this.checkWorkers();
  }

  private checkWorkers(): void {
    if (Atomics.load(this.memory.control, FAILED)) throw new Error('a replica failed in a worker thread (see its error above)');
  }
}
