/** A loader thread: assembles training batches from a store (see loader.ts), one request at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import { storeBatches } from './batches.js';
import type { LoaderSetup, LoaderRequest } from './loader.js';
import { openStore, StoreReader } from './store.js';

const setup = workerData as LoaderSetup;
const reader = new StoreReader(setup.dir, openStore(setup.dir), setup.split);
const source = storeBatches(reader, setup.crop, setup.preprocess, setup.augment);
const imageSize = 3 * setup.crop * setup.crop;

parentPort!.on('message', (request: LoaderRequest) => {
  try {
    const count = request.indices.length;
    const x = new Float32Array(count * imageSize),
      y = new Float32Array(count);
    void source.fill(request.indices, 0, count, x, y, request.augmentation);
    parentPort!.postMessage({ id: request.id, x, y }, [x.buffer, y.buffer]);
  } catch (error) {
    parentPort!.postMessage({ id: request.id, error: (error as Error).message });
  }
});
