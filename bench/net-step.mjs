// What the in-process A/B scripts (ab.mjs, ab-env.mjs, ab-ort.mjs) share: one step of a net on random
// inputs (a forward pass, or a training step: forward, backward, SGD), and the median they report.
import { Net } from '../dist/src/net/net.js';
import { Sgd } from '../dist/src/train/sgd.js';

export function netStep(backend, spec, batch, train = true) {
  const net = Net.build(spec, { backend, batch, seed: 1 });
  const sgd = new Sgd(net, { lr: 0.001 });
  const [data, labels] = net.inputNames;
  net.setInput(
    data,
    Float32Array.from({ length: net.shapeOf(data).reduce((a, b) => a * b) }, () => Math.random() - 0.5),
  );
  if (labels)
    net.setInput(
      labels,
      Float32Array.from({ length: batch }, () => Math.floor(Math.random() * 10)),
    );
  return () => {
    net.forward({ training: train });
    if (!train) return;
    net.backward();
    sgd.step();
  };
}

/** The median of a list of times or ratios (the upper middle one of an even count). */
export const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
