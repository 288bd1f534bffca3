#!/usr/bin/env node
/**
 * Builds the browser app into dist/app/ (static files any web server can serve; `alexnet serve`
 * serves them): the page and its engine bundled by esbuild from src/app/, the wasm kernels and their
 * worker, a net trained on Fashion-MNIST (src/app/assets/), and a sample of Fashion-MNIST (the first
 * 6,000 training and 1,000 test images, from Debian's dataset-fashion-mnist or the folder in
 * ALEXNET_APP_SAMPLE) to train on at the first click.
 *
 * The engine shares the library's modules, some of which also hold Node-only paths (files, sharp,
 * the FFI). Those packages resolve here to a module whose every export throws "not available in a
 * browser" when called: the page calls none of them (its tests would show it), as a bundler's
 * `browser: { fs: false }` field does for other libraries. ONNX's schema, which Node reads from
 * src/onnx/onnx.proto, is inlined.
 */
import { build } from 'esbuild';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

const root = join(import.meta.dirname, '..');
const out = join(root, 'dist', 'app');
const NODE_ONLY = /^(node:.*|sharp|koffi|vega|vega-lite|fs|path|os|url|zlib|worker_threads|child_process)$/;

const nodeOnly = {
  name: 'node-only',
  setup(b) {
    b.onResolve({ filter: NODE_ONLY }, (args) => ({ path: args.path, namespace: 'node-only' }));
    b.onLoad({ filter: /.*/, namespace: 'node-only' }, (args) => ({
      contents: `const fail = () => { throw new Error(${JSON.stringify(`${args.path} is not available in a browser`)}); };
module.exports = new Proxy({}, { get: (_, key) => (key === '__esModule' ? false : fail) });`,
      loader: 'js',
    }));
    b.onLoad({ filter: /[\\/]src[\\/]onnx[\\/]schema\.ts$/ }, () => ({
      contents: `export function onnxSchemaText() { return ${JSON.stringify(readFileSync(join(root, 'src/onnx/onnx.proto'), 'utf8'))}; }`,
      loader: 'ts',
    }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'wasm'), { recursive: true });
const result = await build({
  entryPoints: {
    page: join(root, 'src/app/page.ts'),
    engine: join(root, 'src/app/engine.ts'),
    'kernel-worker': join(root, 'src/backend/wasm/worker.ts'),
  },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  plugins: [nodeOnly],
  logLevel: 'warning',
  metafile: true,
});
for (const file of ['index.html', 'style.css']) copyFileSync(join(root, 'src/app', file), join(out, file));
// the net the page opens first: the scaled AlexNet trained on all of Fashion-MNIST (README, "The browser app", says how)
cpSync(join(root, 'src/app/assets'), join(out, 'assets'), { recursive: true });
for (const file of readdirSync(join(root, 'dist/wasm')).filter((f) => f.endsWith('.wasm')))
  copyFileSync(join(root, 'dist/wasm', file), join(out, 'wasm', file));

const sample = process.env.ALEXNET_APP_SAMPLE ?? '/usr/share/datasets/fashion-mnist';
const SAMPLE = { train: 6000, t10k: 1000 };
if (existsSync(join(sample, 'train-images-idx3-ubyte.gz'))) writeSample(sample);
else console.warn(`build-app: no Fashion-MNIST in ${sample} (install dataset-fashion-mnist): the app is built without its sample`);

/** The first images of each split, as gzipped IDX files of their own. */
function writeSample(from) {
  mkdirSync(join(out, 'sample'), { recursive: true });
  for (const [split, count] of Object.entries(SAMPLE)) {
    for (const [kind, header] of [
      ['images-idx3-ubyte', 16],
      ['labels-idx1-ubyte', 8],
    ]) {
      const bytes = gunzipSync(readFileSync(join(from, `${split}-${kind}.gz`)));
      const perItem = kind.startsWith('images') ? 28 * 28 : 1;
      const head = Buffer.from(bytes.subarray(0, header));
      head.writeUInt32BE(count, 4);
      const body = bytes.subarray(header, header + count * perItem);
      writeFileSync(join(out, 'sample', `${split}-${kind}.gz`), gzipSync(Buffer.concat([head, body]), { level: 9 }));
    }
  }
}

const bytes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .map(([file, o]) => `${basename(file)} ${(o.bytes / 1024).toFixed(0)} KiB`);
console.log(`build-app: ${bytes.join(', ')}`);
