/**
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
 * the counter-based generator of Random123, cuRAND and PyTorch's CUDA backend.
 *
 * Every random number in this project comes from it: weight initialisation draws from a `Philox`
 * stream, and dropout masks are the pure function `philox4x32(counter = element index, key = seed)`,
 * so any backend (CPU, wasm, WebGPU) produces the same mask for the same seed, in any order.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_POW_32 = 4294967296;

/** High 32 bits of the 64-bit product of two uint32 (exact in float64: every partial sum < 2^53). */
function mulhi32(a: number, b: number): number {
  const ah = a >>> 16,
    al = a & 0xffff,
    bh = b >>> 16,
    bl = b & 0xffff;
  const mid = ah * bl + al * bh;
  return (ah * bh + Math.floor((mid * 65536 + al * bl) / TWO_POW_32)) >>> 0;
}

/** One Philox4x32-10 block: 4 uint32 counter words and 2 key words in, 4 uint32 out. */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(M0, c0),
      lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2),
      lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/**
 * The Philox streams of a run's seed, one per use, so no two uses ever draw the same numbers:
 * the per-step generator (dropout seeds), each parameter's initialisation, each epoch's data order, the validation hold-out, each batch's
 * epoch's augmentation (epochs < 2^31).
 */
export const streams = {
  steps: 0,
  parameter: (index: number) => 0x10000 + index,
  epochOrder: (epoch: number) => 0x1000000 + epoch,
  validationSplit: 0xfffffff,
  augmentation: (epoch: number) => 0x80000000 + epoch,
};

/** A uint32 mapped to [0, 1) with 24 bits, so the value is exact in float32 too. */
export function uint32ToUnit(u: number): number {
  return (u >>> 8) * (1 / 16777216);
}

/** The serializable position of a `Philox` stream: enough to resume it exactly. */
export interface PhiloxState {
  seed: number;
  stream: number;
  /** How many uint32 values the stream has produced. */
  drawn: number;
}

/**
 * A sequential stream over Philox4x32-10: key = (seed, stream), counter = block index.
 * `seed` and `stream` are uint32; different streams of one seed are independent.
 */
export class Philox {
  readonly seed: number;
  readonly stream: number;
  private drawn = 0;
  private readonly block = new Uint32Array(4);
  private blockIndex = -1;
  private spareNormal: number | null = null;

  constructor(seed: number, stream = 0) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new Error(`random seed must be an integer in [0, 2^32), got ${seed}`);
    this.seed = seed;
    this.stream = stream >>> 0;
  }

  static fromState(state: PhiloxState): Philox {
    const rng = new Philox(state.seed, state.stream);
    rng.drawn = state.drawn;
    return rng;
  }

  state(): PhiloxState {
    if (this.spareNormal !== null) throw new Error('Philox.state(): a normal draw is half used; take states between pairs');
    return { seed: this.seed, stream: this.stream, drawn: this.drawn };
  }

  nextUint32(): number {
    const index = this.drawn++;
    const blockIndex = Math.floor(index / 4);
    if (blockIndex !== this.blockIndex) {
      philox4x32(blockIndex >>> 0, Math.floor(blockIndex / TWO_POW_32) >>> 0, 0, 0, this.seed, this.stream, this.block);
      this.blockIndex = blockIndex;
    }
    return this.block[index % 4]!;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return uint32ToUnit(this.nextUint32());
  }

  /** Standard normal by the Box-Muller transform; values come in pairs. */
  nextNormal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    const u1 = 1 - this.nextFloat(); // (0, 1]: log is finite
    const u2 = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }
}

/** A permutation of 0…size−1 by Fisher-Yates over one Philox stream. */
export function shuffled(size: number, seed: number, stream: number): Uint32Array {
  const order = Uint32Array.from({ length: size }, (_, i) => i);
  const rng = new Philox(seed, stream);
  for (let i = size - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
