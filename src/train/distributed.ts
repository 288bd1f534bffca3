/**
 * Data-parallel training across processes: every rank holds the whole net, trains on its slice of
 * each batch and adds its gradients to the others' before the update, so every rank makes the same
 * step. What it needs of the processes is a `Collective` — MPI's (`loadMpi` in the native backend),
 * given by the caller, so this module stays portable. Sums work in place on the backend's memory
 * where the host can reach it (the CPU backends), else through a copy.
 */
import type { FloatArray } from '../backend/backend.js';
import type { Net } from '../net/net.js';
import type { Tensor } from '../tensor.js';

export type CollectiveArray = Float32Array | Float64Array | Int32Array;

/** The processes of a run: this one's rank, their number, and collectives over all of them. */
export interface Collective {
  readonly rank: number;
  readonly size: number;
  /** Every rank's `values` summed, into every rank's `values`. */
  allreduceSum(values: CollectiveArray): void;
  /** Rank `root`'s `values` into every rank's. */
  broadcast(values: CollectiveArray, root: number): void;
}

/** The rank that owns the run folder, prints, and whose state the others take. */
export const LEADER = 0;

export class DataParallel {
  constructor(
    readonly world: Collective,
    private readonly net: Net,
  ) {}

  get rank(): number {
    return this.world.rank;
  }

  get size(): number {
    return this.world.size;
  }

  get leads(): boolean {
    return this.world.rank === LEADER;
  }

  /** Sums every rank's gradients of these tensors into every rank's. */
  sumGradients(tensors: readonly Tensor[]): Promise<void> {
    return this.inPlace(tensors, (values) => this.world.allreduceSum(values));
  }

  /** The leader's values of these tensors (weights, momentum) into every rank's. */
  shareTensors(tensors: readonly Tensor[]): Promise<void> {
    return this.inPlace(tensors, (values) => this.world.broadcast(values, LEADER));
  }

  shareJson<T>(value: T | undefined): T {
    return shareJson(this.world, value);
  }

  /** Whether any rank says so (a stop asked for on one rank stops them all at the same step). */
  any(flag: boolean): boolean {
    const votes = Int32Array.of(flag ? 1 : 0);
    this.world.allreduceSum(votes);
    return votes[0]! > 0;
  }

  /** Every rank's `values` summed (counts and sums of a batch or a validation pass). */
  sum(values: Float64Array): Float64Array {
    this.world.allreduceSum(values);
    return values;
  }

  /** Throws, on every rank, when a rank's weights differ from the leader's: the ranks must make the
   * same steps, and a difference (a rank's other data or other code) would grow silently. */
  async checkSameWeights(when: string): Promise<void> {
    const hash = Float64Array.of(0, 0);
    for (const p of this.net.params) hashInto(hash, await hostValues(p.value));
    const leader = Float64Array.from(hash);
    this.world.broadcast(leader, LEADER);
    const differ = new Int32Array(this.size);
    differ[this.rank] = leader[0] === hash[0] && leader[1] === hash[1] ? 0 : 1;
    this.world.allreduceSum(differ);
    const ranks = [...differ.keys()].filter((r) => differ[r] !== 0);
    if (ranks.length > 0)
      throw new Error(
        `${when}, the weights of rank${ranks.length > 1 ? 's' : ''} ${ranks.join(', ')} differ from rank ${LEADER}'s: ` +
          'every rank must run the same version on the same data (the same files at the same path on every host)',
      );
  }

  private async inPlace(tensors: readonly Tensor[], collective: (values: CollectiveArray) => void): Promise<void> {
    const backend = this.net.backend;
    for (const t of tensors) {
      const view = backend.hostView?.(t.buffer);
      if (view) {
        collective(view);
        continue;
      }
      const copy = asCollectiveArray(await backend.read(t.buffer));
      collective(copy);
      backend.write(t.buffer, copy);
    }
  }
}

/** The leader's `value` (plain JSON: given on the leader alone) on every rank. */
export function shareJson<T>(world: Collective, value: T | undefined): T {
  const bytes = world.rank === LEADER ? new TextEncoder().encode(JSON.stringify(value)) : new Uint8Array(0);
  const length = Int32Array.of(bytes.length);
  world.broadcast(length, LEADER);
  const words = new Int32Array(Math.ceil(length[0]! / 4));
  new Uint8Array(words.buffer).set(bytes);
  world.broadcast(words, LEADER);
  return JSON.parse(new TextDecoder().decode(new Uint8Array(words.buffer, 0, length[0]!))) as T;
}

async function hostValues(t: Tensor): Promise<FloatArray> {
  return t.backend.hostView?.(t.buffer) ?? (await t.read());
}

function asCollectiveArray(values: FloatArray): Float32Array | Float64Array {
  return values instanceof Float64Array ? values : Float32Array.from(values);
}

/** Two running 32-bit hashes of the values' bits: FNV-1a's over each word, and another over each word rotated. */
function hashInto(hash: Float64Array, values: FloatArray): void {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.byteLength / 4);
  let a = hash[0]! >>> 0,
    b = hash[1]! >>> 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    a = Math.imul(a ^ w, 16777619) >>> 0;
    b = Math.imul(b ^ ((w << 13) | (w >>> 19)), 2246822519) >>> 0;
  }
  hash[0] = a;
  hash[1] = b;
}
