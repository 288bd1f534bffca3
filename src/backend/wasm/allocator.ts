/**
 * The wasm memory allocator: first fit over a free list kept sorted and merged, the memory grown
 * (in 64 KiB pages) only when no free block fits, and the top lowered again when the block below
 * it is freed. It touches the memory only to grow it, so it is tested against a stand-in.
 */
export const PAGE = 65536;

/** What the allocator needs of a WebAssembly.Memory. */
export interface GrowableMemory {
  readonly buffer: { readonly byteLength: number };
  grow(pages: number): number;
}

interface Block {
  offset: number;
  bytes: number;
}

export class Allocator {
  private free: Block[] = [];
  private top: number;

  /** Allocates from byte `base` up to `limit` (exclusive), in blocks that are multiples of `align`. */
  constructor(
    private readonly memory: GrowableMemory,
    private readonly base: number,
    private readonly limit: number,
    readonly align = 64,
  ) {
    this.top = base;
  }

  /** Bytes in live blocks. */
  get usedBytes(): number {
    return this.top - this.base - this.free.reduce((n, f) => n + f.bytes, 0);
  }

  /** The end of the highest block ever still live: the memory in use. */
  get end(): number {
    return this.top;
  }

  /** The offset of a new block of at least `bytes` (rounded up to the alignment). */
  allocate(bytes: number): number {
    const size = Math.max(this.align, Math.ceil(bytes / this.align) * this.align);
    const index = this.free.findIndex((f) => f.bytes >= size);
    if (index >= 0) {
      const block = this.free[index]!;
      const offset = block.offset;
      if (block.bytes === size) this.free.splice(index, 1);
      else {
        block.offset += size;
        block.bytes -= size;
      }
      return offset;
    }
    const offset = this.top,
      end = offset + size;
    if (end > this.limit) {
      throw new Error(
        `wasm memory exhausted: ${(end / 2 ** 30).toFixed(2)} GiB needed, wasm32 addresses ${(this.limit / 2 ** 30).toFixed(0)} GiB`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return offset;
  }

  /** Returns a block (its offset and the size it was allocated with). */
  release(offset: number, bytes: number): void {
    const size = Math.max(this.align, Math.ceil(bytes / this.align) * this.align);
    if (offset < this.base || offset + size > this.top || this.free.some((f) => offset < f.offset + f.bytes && f.offset < offset + size)) {
      throw new Error(`release: bytes ${offset}–${offset + size} are not an allocated block`);
    }
    this.free.push({ offset, bytes: size });
    this.free.sort((a, b) => a.offset - b.offset);
    const merged: Block[] = [];
    for (const f of this.free) {
      const last = merged.at(-1);
      if (last && last.offset + last.bytes === f.offset) last.bytes += f.bytes;
      else merged.push({ ...f });
    }
    const tail = merged.at(-1);
    if (tail && tail.offset + tail.bytes === this.top) {
      this.top = tail.offset;
      merged.pop();
    }
    this.free = merged;
  }

  /** The free blocks below the top, in address order (for tests and diagnostics). */
  freeBlocks(): readonly Readonly<Block>[] {
    return this.free;
  }
}
