/**
 * PyTorch parity: every fixture written by tools/make_fixtures.py (Debian's PyTorch) is rebuilt
 * from its spec, run forward and backward here, and compared tensor by tensor.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Net, type NetSpec } from '../src/index.js';
import { layerTypes } from '../src/layers/index.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { testBackends } from './backends.js';
import { assertClose } from './helpers.js';

const DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'pytorch');
/** float32 throughout; sums of up to a few hundred products and an LRN power. */
const FORWARD = { atol: 1e-5, rtol: 1e-4 };
const BACKWARD = { atol: 1e-5, rtol: 1e-3 };

function byPrefix(tensors: Record<string, { data: Float32Array }>, prefix: string): [string, Float32Array][] {
  return Object.entries(tensors)
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => [k.slice(prefix.length), v.data]);
}

for (const { name: backendName, backend } of await testBackends())
  for (const file of readdirSync(DIR)
    .filter((f) => f.endsWith('.safetensors'))
    .sort()) {
    test(`PyTorch parity [${backendName}]: ${file.replace('.safetensors', '')}`, async () => {
      const { tensors, metadata } = parseSafetensors(readFileSync(join(DIR, file)), file);
      const spec = JSON.parse(metadata.net!) as NetSpec;
      const training = JSON.parse(metadata.training!) as boolean;
      const net = Net.build(spec, { backend, batch: Number(metadata.batch), inputGradients: true });
      net.loadParams(Object.fromEntries(byPrefix(tensors, 'param.')));
      for (const [name, data] of byPrefix(tensors, 'input.')) net.setInput(name, data);
      net.forward({ training });
      for (const [name, expected] of byPrefix(tensors, 'output.')) {
        assertClose(await net.read(name), expected, FORWARD.atol, FORWARD.rtol, `${file}: output ${name}`);
      }
      const seeds = byPrefix(tensors, 'grad_output.');
      net.backward(seeds.length ? Object.fromEntries(seeds) : { loss: [1] });
      for (const [name, expected] of byPrefix(tensors, 'grad_input.')) {
        assertClose(await net.readGrad(name), expected, BACKWARD.atol, BACKWARD.rtol, `${file}: gradient of input ${name}`);
      }
      for (const [name, expected] of byPrefix(tensors, 'grad_param.')) {
        assertClose(await net.param(name).grad.read(), expected, BACKWARD.atol, BACKWARD.rtol, `${file}: gradient of ${name}`);
      }
      net.dispose();
    });
  }

test('every layer type of the registry is in a PyTorch fixture', () => {
  const covered = new Set<string>();
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.safetensors'))) {
    const { metadata } = parseSafetensors(readFileSync(join(DIR, file)), file);
    for (const layer of (JSON.parse(metadata.net!) as NetSpec).layers) covered.add(layer.type);
  }
  const missing = layerTypes.filter((type) => !covered.has(type));
  if (missing.length > 0)
    throw new Error(`no PyTorch fixture for ${missing.join(', ')}: add a case to tools/make_fixtures.py and run npm run fixtures`);
});
