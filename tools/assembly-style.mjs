// Prettier for the AssemblyScript kernels: their `@inline [export] function` decorators are not TypeScript,
// so they are hidden in a comment while Prettier formats the file, then restored; lines Prettier
// cannot wrap (comments) are capped at 150 columns like the rest of the tree.
// Usage: node tools/assembly-style.mjs --check | --write
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as prettier from 'prettier';

const DIR = new URL('../src/backend/wasm/assembly/', import.meta.url).pathname;
const MAX = 150;
const write = process.argv.includes('--write');
const options = { ...(await prettier.resolveConfig(join(DIR, 'index.ts'))), parser: 'typescript' };
let failures = 0;
for (const name of readdirSync(DIR).filter((n) => n.endsWith('.ts'))) {
  const path = join(DIR, name);
  const text = readFileSync(path, 'utf8');
  const hidden = text.replace(/^@inline (export )?function/gm, '/* @inline */ $1function');
  const formatted = (await prettier.format(hidden, options)).replace(/^\/\* @inline \*\/ (export )?function/gm, '@inline $1function');
  if (formatted !== text) {
    if (write) writeFileSync(path, formatted);
    else {
      console.error(`${path}: not formatted (npm run format)`);
      failures++;
    }
  }
  formatted.split('\n').forEach((line, i) => {
    if (line.length > MAX) {
      console.error(`${path}:${i + 1}: ${line.length} columns, more than ${MAX}`);
      failures++;
    }
  });
}
process.exitCode = failures > 0 ? 1 : 0;
