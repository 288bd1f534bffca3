/** The wasm memory allocator against a stand-in memory: first fit, merging, the top, growth, 4 GiB. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Allocator, type GrowableMemory, PAGE } from '../src/backend/wasm/allocator.js';

/** A memory that only counts its pages (so the 4 GiB edge costs nothing). */
function standIn(pages = 1): GrowableMemory & { grows: number[] } {
  let byteLength = pages * PAGE;
  const grows: number[] = [];
  return {
    grows,
    get buffer() {
      return { byteLength };
    },
    grow(delta: number) {
      grows.push(delta);
      const before = byteLength / PAGE;
      byteLength += delta * PAGE;
      return before;
    },
  };
}

test('allocations are aligned, contiguous, and rounded up to the alignment', () => {
  const a = new Allocator(standIn(), 1024, 2 ** 32);
  assert.equal(a.allocate(1), 1024);
  assert.equal(a.allocate(64), 1088);
  assert.equal(a.allocate(65), 1152);
  assert.equal(a.allocate(0), 1280, 'an empty buffer still takes one aligned block');
  assert.equal(a.usedBytes, 320);
});

test('first fit reuses the lowest free block that fits, splitting it', () => {
  const a = new Allocator(standIn(), 0, 2 ** 32);
  const [x, y, z] = [a.allocate(128), a.allocate(256), a.allocate(64)];
  a.allocate(64); // keeps z's neighbourhood from reaching the top
  a.release(x, 128);
  a.release(z, 64);
  assert.equal(a.allocate(64), x, 'the first (lowest) block that fits');
  assert.deepEqual(a.freeBlocks(), [
    { offset: x + 64, bytes: 64 },
    { offset: z, bytes: 64 },
  ]);
  assert.equal(a.allocate(64), x + 64);
  assert.equal(a.allocate(64), z);
  assert.equal(y, 128);
});

test('neighbouring free blocks merge, and freeing the block below the top lowers it', () => {
  const a = new Allocator(standIn(), 0, 2 ** 32);
  const blocks = [a.allocate(64), a.allocate(64), a.allocate(64), a.allocate(64)];
  a.release(blocks[0]!, 64);
  a.release(blocks[2]!, 64);
  a.release(blocks[1]!, 64);
  assert.deepEqual(a.freeBlocks(), [{ offset: 0, bytes: 192 }], 'three blocks merged into one');
  assert.equal(a.end, 256);
  a.release(blocks[3]!, 64);
  assert.deepEqual(a.freeBlocks(), [], 'the merged run reached the top: the top shrank instead');
  assert.equal(a.end, 0);
  assert.equal(a.usedBytes, 0);
});

test('the memory grows by whole pages only when no free block fits', () => {
  const memory = standIn(1);
  const a = new Allocator(memory, 0, 2 ** 32);
  a.allocate(PAGE);
  assert.deepEqual(memory.grows, []);
  const big = a.allocate(PAGE + 1);
  assert.deepEqual(memory.grows, [2], 'PAGE + 1 bytes rounded to 64 need two more pages');
  a.release(big, PAGE + 1);
  a.allocate(100);
  assert.deepEqual(memory.grows, [2], 'a freed block is reused before growing');
});

test('the 4 GiB edge: the last byte of wasm32 can be allocated, one block more is a clear error', () => {
  const limit = 2 ** 32;
  const a = new Allocator(standIn(), 1 << 20, limit);
  const last = a.allocate(limit - (1 << 20) - 64);
  assert.equal(a.allocate(64), limit - 64);
  assert.throws(() => a.allocate(64), /^Error: wasm memory exhausted: 4\.00 GiB needed, wasm32 addresses 4 GiB$/);
  a.release(last, limit - (1 << 20) - 64);
  assert.equal(a.allocate(64), 1 << 20, 'after the failure the allocator still works');
});

test('releasing what was not allocated is refused', () => {
  const a = new Allocator(standIn(), 0, 2 ** 32);
  const x = a.allocate(64);
  a.allocate(64);
  assert.throws(() => a.release(4096, 64), /not an allocated block/);
  a.release(x, 64);
  assert.throws(() => a.release(x, 64), /not an allocated block/, 'a double free');
});
