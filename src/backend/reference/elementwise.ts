/** Activations, dropout and the memory kernels. */
import type { FloatArray } from '../backend.js';
import type { ActivationFn, KernelTable, SlabCopyParams } from '../kernels.js';
import { philox4x32, uint32ToUnit } from '../../random.js';

const activations: Record<ActivationFn, { f: (x: number) => number; dfFromY: (y: number) => number }> = {
  relu: { f: (x) => (x <= 0 ? 0 : x), dfFromY: (y) => (y > 0 ? 1 : 0) }, // NaN stays NaN, as PyTorch's
  tanh: { f: Math.tanh, dfFromY: (y) => 1 - y * y },
  sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)), dfFromY: (y) => y * (1 - y) },
};

export function activationForward(p: { fn: ActivationFn }, b: { x: FloatArray; y: FloatArray }): void {
  const { f } = activations[p.fn];
  for (let i = 0; i < b.y.length; i++) b.y[i] = f(b.x[i]!);
}

export function activationBackward(p: { fn: ActivationFn }, b: { y: FloatArray; dy: FloatArray; dx: FloatArray }): void {
  const { dfFromY } = activations[p.fn];
  for (let i = 0; i < b.dx.length; i++) b.dx[i] = b.dy[i]! * dfFromY(b.y[i]!);
}

export function dropoutForward(p: KernelTable['dropout_forward']['params'], b: { x: FloatArray; y: FloatArray; mask: FloatArray }): void {
  const keepScale = 1 / (1 - p.p);
  const block = new Uint32Array(4);
  for (let i = 0; i < p.length; i++) {
    const g = p.offset + i;
    if (i === 0 || g % 4 === 0) philox4x32(Math.floor(g / 4), 0, 0, 0, p.seed, p.stream, block);
    b.mask[i] = uint32ToUnit(block[g % 4]!) < p.p ? 0 : keepScale;
    b.y[i] = b.x[i]! * b.mask[i]!;
  }
}

export function randomFill(p: KernelTable['random_fill']['params'], b: { y: FloatArray }): void {
  const block = new Uint32Array(4);
  for (let i = 0; i < p.length; i++) {
    if (i % 4 === 0) philox4x32(i / 4, 0, 0, 0, p.seed, p.stream, block);
    if (p.distribution === 'uniform') {
      b.y[i] = p.a + (p.b - p.a) * uint32ToUnit(block[i % 4]!);
      continue;
    }
    const pair = i % 4 < 2 ? 0 : 2;
    const radius = Math.sqrt(-2 * Math.log(1 - uint32ToUnit(block[pair]!)));
    const angle = 2 * Math.PI * uint32ToUnit(block[pair + 1]!);
    b.y[i] = p.a + p.b * radius * (i % 2 === 0 ? Math.cos(angle) : Math.sin(angle));
  }
}

export function multiply(_p: unknown, b: { a: FloatArray; b: FloatArray; y: FloatArray }): void {
  for (let i = 0; i < b.y.length; i++) b.y[i] = b.a[i]! * b.b[i]!;
}

export function sgdUpdate(p: KernelTable['sgd_update']['params'], b: { weight: FloatArray; grad: FloatArray; velocity: FloatArray }): void {
  for (let i = 0; i < b.weight.length; i++) {
    b.velocity[i] = p.momentum * b.velocity[i]! - p.weightDecay * p.lr * b.weight[i]! - p.lr * b.grad[i]!;
    b.weight[i]! += b.velocity[i]!;
  }
}

export function copy(_p: unknown, b: { x: FloatArray; y: FloatArray }): void {
  b.y.set(b.x);
}

export function copySlab(p: SlabCopyParams, b: { src: FloatArray; dst: FloatArray }): void {
  const rows = p.count * p.inner;
  for (let o = 0; o < p.outer; o++) {
    const from = (o * p.srcAxis + p.srcOffset) * p.inner;
    b.dst.set(b.src.subarray(from, from + rows), (o * p.dstAxis + p.dstOffset) * p.inner);
  }
}

export function accumulate(_p: unknown, b: { x: FloatArray; y: FloatArray }): void {
  for (let i = 0; i < b.y.length; i++) b.y[i]! += b.x[i]!;
}

export function fill(p: { value: number }, b: { y: FloatArray }): void {
  b.y.fill(p.value);
}
