// Compiles the AssemblyScript kernels twice: with relaxed SIMD (a fused multiply-add) and with
// plain SIMD128 for engines without it (Safari; Node 20 unless a flag is set). The backend picks
// one at load time with WebAssembly.validate.
import { mkdirSync } from 'node:fs';
import asc from 'assemblyscript/asc';

mkdirSync('dist/wasm', { recursive: true });
for (const [variant, features] of [['relaxed', 'simd,relaxed-simd,threads'], ['simd', 'simd,threads']]) {
  const { error, stderr } = await asc.main([
    'src/backend/wasm/assembly/index.ts', '-o', `dist/wasm/kernels-${variant}.wasm`,
    '-O3', '--noAssert', '--runtime', 'stub',
    '--importMemory', '--sharedMemory', '--initialMemory', '16', '--maximumMemory', '65536',
    '--enable', features,
  ]);
  if (error) {
    console.error(stderr.toString());
    throw error;
  }
}
