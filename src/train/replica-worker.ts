/** A worker thread holding one replica of a data-parallel run (replicas.ts): builds the net on a
 * single-threaded wasm backend, reports ready, and serves the leading thread's commands. */
import { parentPort, workerData } from 'node:worker_threads';
import { WasmBackend } from '../backend/wasm/backend.js';
import { initializers } from '../net/init.js';
import { Net } from '../net/net.js';
import { Replica, ReplicaMemory, type ReplicaSetup } from './replicas.js';
import { Sgd } from './sgd.js';

const setup = workerData as ReplicaSetup;
let replica: Replica;
try {
  const backend = await WasmBackend.create({ threads: 1 });
  const net = Net.build(setup.spec, { backend, batch: setup.batch, seed: setup.seed, init: initializers[setup.init] });
  const sgd = new Sgd(net, { lr: 0, momentum: setup.momentum, weightDecay: setup.weightDecay });
  replica = new Replica(net, sgd, new ReplicaMemory(setup.layout, setup.control, setup.floats), setup.index);
} catch (error) {
  parentPort!.postMessage({ error: `replica ${setup.index}: ${String(error)}` });
  throw error;
}
parentPort!.postMessage({ ready: true });
replica.serve();
