/** Softmax, log-softmax and the softmax cross-entropy loss, all with the maximum subtracted first. */
import type { FloatArray } from '../backend.js';
import type { SoftmaxParams } from '../kernels.js';

function forEachRow(p: SoftmaxParams, visit: (start: number, stride: number) => void): void {
  for (let o = 0; o < p.outer; o++) {
    for (let i = 0; i < p.inner; i++) visit(o * p.axis * p.inner + i, p.inner);
  }
}

/** log Σ exp(x) over one row, computed stably. */
function logSumExp(x: FloatArray, start: number, stride: number, count: number): number {
  let max = -Infinity;
  for (let c = 0; c < count; c++) max = Math.max(max, x[start + c * stride]!);
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let c = 0; c < count; c++) sum += Math.exp(x[start + c * stride]! - max);
  return max + Math.log(sum);
}

export function softmaxForward(p: SoftmaxParams, b: { x: FloatArray; y: FloatArray }): void {
  forEachRow(p, (start, stride) => {
    const lse = logSumExp(b.x, start, stride, p.axis);
    for (let c = 0; c < p.axis; c++) {
      const i = start + c * stride;
      b.y[i] = p.log ? b.x[i]! - lse : Math.exp(b.x[i]! - lse);
    }
  });
}

/** softmax: dx = y·(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy. */
export function softmaxBackward(p: SoftmaxParams, b: { y: FloatArray; dy: FloatArray; dx: FloatArray }): void {
  forEachRow(p, (start, stride) => {
    let sum = 0;
    for (let c = 0; c < p.axis; c++) {
      const i = start + c * stride;
      sum += p.log ? b.dy[i]! : b.dy[i]! * b.y[i]!;
    }
    for (let c = 0; c < p.axis; c++) {
      const i = start + c * stride;
      b.dx[i] = p.log ? b.dy[i]! - Math.exp(b.y[i]!) * sum : b.y[i]! * (b.dy[i]! - sum);
    }
  });
}

function labelAt(labels: FloatArray, n: number, classes: number): number {
  const label = labels[n]!;
  if (!Number.isInteger(label) || label < 0 || label >= classes) {
    throw new Error(`softmax cross-entropy: label ${label} at batch index ${n} is not a class in [0, ${classes})`);
  }
  return label;
}

export function softmaxCrossEntropyForward(
  p: { batch: number; classes: number },
  b: { logits: FloatArray; labels: FloatArray; probs: FloatArray; loss: FloatArray },
): void {
  let total = 0;
  for (let n = 0; n < p.batch; n++) {
    const start = n * p.classes;
    const lse = logSumExp(b.logits, start, 1, p.classes);
    for (let c = 0; c < p.classes; c++) b.probs[start + c] = Math.exp(b.logits[start + c]! - lse);
    total += lse - b.logits[start + labelAt(b.labels, n, p.classes)]!;
  }
  b.loss[0] = total / p.batch;
}

export function softmaxCrossEntropyBackward(
  p: { batch: number; classes: number },
  b: { probs: FloatArray; labels: FloatArray; dloss: FloatArray; dlogits: FloatArray },
): void {
  const scale = b.dloss[0]! / p.batch;
  for (let n = 0; n < p.batch; n++) {
    const label = labelAt(b.labels, n, p.classes);
    for (let c = 0; c < p.classes; c++) {
      const i = n * p.classes + c;
      b.dlogits[i] = (b.probs[i]! - (c === label ? 1 : 0)) * scale;
    }
  }
}
