/** Running a net over many examples a batch at a time, and turning its logits into probabilities. */
import type { FloatArray } from '../backend/backend.js';
import { sizeOf } from '../tensor.js';
import type { Net } from './net.js';
import { netRoles } from './roles.js';

/** One pass over a batch of inputs: a NaN or an infinity is refused, naming its example and element. */
export function checkFiniteInput(x: ArrayLike<number>, first: number, perExample: number, source: string): void {
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i]))
      throw new Error(
        `${source}: example ${first + Math.floor(i / perExample)} holds ${x[i]} (element ${i % perExample}); the model takes finite numbers`,
      );
}

/** The softmax of each row of logits, into `out`. */
export function softmaxRows(z: ArrayLike<number>, rows: number, classes: number, out: Float64Array): Float64Array {
  for (let r = 0; r < rows; r++) {
    let max = -Infinity,
      sum = 0;
    for (let c = 0; c < classes; c++) max = Math.max(max, z[r * classes + c]!);
    for (let c = 0; c < classes; c++) sum += Math.exp(z[r * classes + c]! - max);
    for (let c = 0; c < classes; c++) out[r * classes + c] = Math.exp(z[r * classes + c]! - max) / sum;
  }
  return out;
}

/**
 * Runs the net (evaluation mode) over `count` examples a batch at a time: `fill(from, to, x)` writes examples [from, to) into
 * `x` (zeros after them in a last, short batch), `take(from, to, logits)` receives their rows of logits. Memory stays one
 * batch's however many examples there are: a net built for 1,500 photos at once needed more than wasm's 4 GiB. An input
 * value that is not a finite number is refused, naming its example (`source`: where the inputs came from).
 */
export async function logitsInBatches(
  net: Net,
  count: number,
  fill: (from: number, to: number, x: Float32Array) => Promise<void> | void,
  take: (from: number, to: number, logits: FloatArray) => void,
  source = 'the input',
): Promise<void> {
  const { data, labels, logits } = netRoles(net);
  const x = new Float32Array(sizeOf(net.shapeOf(data)));
  if (labels) net.setInput(labels, new Float32Array(net.batch)); // a loss layer's labels, unused: class 0
  for (let from = 0; from < count; from += net.batch) {
    const to = Math.min(count, from + net.batch);
    x.fill(0);
    await fill(from, to, x);
    checkFiniteInput(x, from, x.length / net.batch, source);
    net.setInput(data, x);
    net.forward({ training: false });
    take(from, to, await net.read(logits));
  }
}
