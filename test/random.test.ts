import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Philox, philox4x32 } from '../src/index.js';

const hex = (words: Uint32Array) => [...words].map((w) => w.toString(16).padStart(8, '0')).join(' ');

test('Philox4x32-10 matches the Random123 known-answer vectors', () => {
  assert.equal(hex(philox4x32(0, 0, 0, 0, 0, 0)), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  const m = 0xffffffff;
  assert.equal(hex(philox4x32(m, m, m, m, m, m)), '408f276d 41c83b0e a20bc7c6 6d5451fd');
  assert.equal(
    hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0)),
    'd16cfe09 94fdcceb 5001e420 24126ea1',
  );
});

test('a Philox stream resumes exactly from its state', () => {
  const a = new Philox(1234, 7);
  for (let i = 0; i < 5; i++) a.nextUint32();
  const b = Philox.fromState(a.state());
  for (let i = 0; i < 20; i++) assert.equal(a.nextUint32(), b.nextUint32());
});

test('Philox normals have mean 0 and variance 1', () => {
  const rng = new Philox(42);
  const n = 20000;
  let sum = 0,
    sq = 0;
  for (let i = 0; i < n; i++) {
    const z = rng.nextNormal();
    sum += z;
    sq += z * z;
  }
  assert.ok(Math.abs(sum / n) < 0.03, `mean ${sum / n}`);
  assert.ok(Math.abs(sq / n - 1) < 0.04, `variance ${sq / n}`);
});

test('seeds outside uint32 are refused', () => {
  assert.throws(() => new Philox(-1), /seed must be an integer/);
});
