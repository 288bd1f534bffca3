/**
 * Training batches from a store assembled on worker threads, ahead of the training loop: the
 * batch the loop asks for and the next `depth` of the epoch are requested at once, spread over the
 * workers, so the engine does not wait for data while memory stays bounded (depth batches in
 * flight). An example's augmentation depends only on (seed, epoch, its place in the epoch), never
 * on which worker made it or when: runs are the same for any number of workers.
 */
import { Worker } from 'node:worker_threads';
import { type Augmentation, type BatchSource, type StoreAugmentation, storeBatches } from './batches.js';
import type { Preprocess } from './preprocess.js';
import type { RecordReader } from './store.js';

export interface LoaderSetup {
  dir: string;
  split: string;
  crop: number;
  preprocess: Preprocess;
  augment: StoreAugmentation;
}

export interface LoaderRequest {
  id: number;
  indices: Uint32Array;
  augmentation: Augmentation;
}

type Reply = { id: number; x: Float32Array; y: Float32Array } | { id: number; error: string };

/** The store's batches, augmented ones made by `workers` threads (evaluation's plain ones here). */
export function prefetchingStoreBatches(
  reader: RecordReader,
  setup: LoaderSetup,
  options: { workers: number; depth: number },
): BatchSource {
  const local = storeBatches(reader, setup.crop, setup.preprocess, setup.augment);
  const threads = Array.from(
    { length: options.workers },
    () => new Worker(new URL('./loader-worker.js', import.meta.url), { workerData: setup }),
  );
  const waiting = new Map<number, { resolve: (r: Reply) => void }>();
  for (const thread of threads) {
    thread.on('message', (reply: Reply) => waiting.get(reply.id)?.resolve(reply));
    thread.on('error', (error) => {
      for (const w of waiting.values()) w.resolve({ id: -1, error: `a loader thread failed: ${error.message}` });
    });
  }
  const pending = new Map<number, Promise<Reply>>(); // by place in the epoch
  let nextId = 0,
    nextThread = 0,
    epochOrder: Uint32Array | undefined;
  const request = (indices: Uint32Array, augmentation: Augmentation) => {
    const key = augmentation.position;
    if (pending.has(key)) return;
    const id = nextId++;
    const reply = new Promise<Reply>((resolve) => waiting.set(id, { resolve }));
    threads[nextThread++ % threads.length]!.postMessage({ id, indices, augmentation } satisfies LoaderRequest);
    pending.set(
      key,
      reply.finally(() => waiting.delete(id)),
    );
  };
  return {
    ...local,
    async fill(order, from, to, x, y, augmentation) {
      if (!augmentation) return local.fill(order, from, to, x, y);
      if (order !== epochOrder) pending.clear(); // a new epoch: what was prefetched for the old is dropped
      epochOrder = order;
      const size = to - from,
        stride = (augmentation.next ?? to) - from;
      for (let k = 0; k <= options.depth; k++) {
        const start = from + k * stride;
        if (start + size > order.length) break;
        request(order.slice(start, start + size), { ...augmentation, position: augmentation.position + k * stride });
      }
      const reply = await pending.get(augmentation.position)!;
      for (const key of pending.keys()) if (key <= augmentation.position) pending.delete(key); // this one, and any skipped
      if ('error' in reply) throw new Error(reply.error);
      x.set(reply.x);
      y.set(reply.y);
    },
    async close() {
      await Promise.all(threads.map((t) => t.terminate()));
    },
  };
}
