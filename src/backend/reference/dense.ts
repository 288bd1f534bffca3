/** Matrix products: GEMM, and the linear layer's three products written with it. */
import type { FloatArray } from '../backend.js';
import type { KernelTable, LinearParams } from '../kernels.js';

export function gemm(p: KernelTable['gemm']['params'], b: { a: FloatArray; b: FloatArray; c: FloatArray }): void {
  const { M, N, K } = p;
  const aAt = p.transA ? (i: number, k: number) => b.a[k * M + i]! : (i: number, k: number) => b.a[i * K + k]!;
  const bAt = p.transB ? (k: number, j: number) => b.b[j * K + k]! : (k: number, j: number) => b.b[k * N + j]!;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += aAt(i, k) * bAt(k, j);
      // beta = 0 overwrites (BLAS convention), so stale NaN in c cannot leak through.
      b.c[i * N + j] = p.alpha * sum + (p.beta === 0 ? 0 : p.beta * b.c[i * N + j]!);
    }
  }
}

export function linearForward(p: LinearParams, b: { x: FloatArray; weight: FloatArray; bias?: FloatArray; y: FloatArray }): void {
  gemm({ M: p.batch, N: p.outFeatures, K: p.inFeatures, transA: false, transB: true, alpha: 1, beta: 0 }, { a: b.x, b: b.weight, c: b.y });
  if (b.bias) for (let i = 0; i < b.y.length; i++) b.y[i]! += b.bias[i % p.outFeatures]!;
}

export function linearBackwardData(p: LinearParams, b: { dy: FloatArray; weight: FloatArray; dx: FloatArray }): void {
  gemm(
    { M: p.batch, N: p.inFeatures, K: p.outFeatures, transA: false, transB: false, alpha: 1, beta: 0 },
    { a: b.dy, b: b.weight, c: b.dx },
  );
}

export function linearBackwardParams(p: LinearParams, b: { x: FloatArray; dy: FloatArray; dweight: FloatArray; dbias?: FloatArray }): void {
  gemm(
    { M: p.outFeatures, N: p.inFeatures, K: p.batch, transA: true, transB: false, alpha: 1, beta: 0 },
    { a: b.dy, b: b.x, c: b.dweight },
  );
  if (b.dbias) {
    const dbias = b.dbias;
    dbias.fill(0);
    b.dy.forEach((v, i) => {
      dbias[i % p.outFeatures]! += v;
    });
  }
}
