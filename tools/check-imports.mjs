#!/usr/bin/env node
/**
 * The import graph of src/ (type-only and dynamic imports included) must have no cycle, and no
 * module may import one of a higher layer: the layers below, bottom first, are the system's. A
 * module's layer is that of the longest entry its path starts with. Run by `npm run lint`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const LAYERS = [
  ['config.ts', 'random.ts'],
  ['backend/kernels.ts'],
  ['backend/backend.ts'],
  ['tensor.ts'],
  ['io'],
  ['backend/reference'],
  ['backend/wasm', 'backend/webgpu'],
  ['backend/native'],
  ['backend/choose.ts'],
  ['net/spec.ts'],
  ['layers'],
  ['net'],
  ['onnx', 'data'],
  ['models'],
  ['train'],
  ['report', 'bench'],
  ['reproduce'],
  ['browser.ts'],
  ['app'],
  ['index.ts', 'cli'],
];

const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'src'));

/** Every TypeScript module under `dir` but the AssemblyScript kernels (compiled on their own). */
function modules(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'assembly' ? [] : modules(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'";]*?\sfrom\s+'(\.{1,2}\/[^']+)'|import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g;

function importsOf(path) {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => resolve(dirname(path), (m[1] ?? m[2]).replace(/\.js$/, '.ts')));
}

function layerOf(module) {
  const path = relative(root, module);
  let best = { layer: -1, entry: '' };
  LAYERS.forEach((entries, layer) => {
    for (const entry of entries)
      if ((path === entry || path.startsWith(`${entry}/`)) && entry.length > best.entry.length) best = { layer, entry };
  });
  return best;
}

const files = modules(root);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((to) => files.includes(to))]));
const problems = [];

for (const [from, targets] of graph) {
  const a = layerOf(from);
  if (a.layer < 0) problems.push(`${relative(root, from)}: in no layer (add it to tools/check-imports.mjs)`);
  for (const to of targets) {
    const b = layerOf(to);
    const sideways = a.layer === b.layer && a.entry !== b.entry;
    if (b.layer > a.layer || sideways)
      problems.push(`${relative(root, from)} imports ${relative(root, to)}: ${b.entry} is ${sideways ? 'beside' : 'above'} ${a.entry}`);
  }
}

const state = new Map();
const stack = [];
function visit(module) {
  state.set(module, 'open');
  stack.push(module);
  for (const to of graph.get(module)) {
    if (state.get(to) === 'open')
      problems.push(`cycle: ${[...stack.slice(stack.indexOf(to)), to].map((m) => relative(root, m)).join(' → ')}`);
    else if (!state.has(to)) visit(to);
  }
  stack.pop();
  state.set(module, 'done');
}
for (const module of files) if (!state.has(module)) visit(module);

if (problems.length > 0) {
  console.error(`check-imports: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} modules in ${LAYERS.length} layers, no cycle, no upward import`);
