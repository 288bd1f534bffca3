/** The static memory plan: the paper's net trains at batch 128 inside wasm32's 4 GiB. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alexnet, Net, Philox, Sgd, WasmBackend } from '../src/index.js';

test("the paper's net takes a training step at batch 128 inside 4 GiB of wasm memory", async () => {
  const backend = await WasmBackend.create({ threads: 2 });
  const batch = 128;
  const net = Net.build(alexnet(), { backend, batch, seed: 1 });
  const sgd = new Sgd(net, { lr: 0.01 });
  const rng = new Philox(1);
  net.setInput(
    'data',
    Float32Array.from({ length: batch * 3 * 224 * 224 }, () => rng.nextFloat() - 0.5),
  );
  net.setInput(
    'label',
    Array.from({ length: batch }, () => rng.nextInt(1000)),
  );
  net.forward({ training: true });
  net.backward();
  sgd.step();
  const [loss] = await net.read('loss');
  const gib = backend.allocatedBytes / 2 ** 30;
  console.log(
    `paper net, batch ${batch}: ${(net.plannedBytes() / 2 ** 30).toFixed(2)} GiB planned for the net, ${gib.toFixed(2)} GiB of wasm memory in use`,
  );
  assert.ok(gib < 4, `${gib.toFixed(2)} GiB`);
  assert.ok(Math.abs(loss! - Math.log(1000)) < 0.5, `an untrained 1000-class net's loss should be near ln 1000, got ${loss}`);
  await backend.dispose();
});
