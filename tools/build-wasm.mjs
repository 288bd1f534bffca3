// Compiles the AssemblyScript kernels four times: with relaxed SIMD (a fused multiply-add) and with
// plain SIMD128 for engines without it (Safari; Node 20 unless a flag is set); each on shared memory
// (worker threads) and on unshared memory (browser pages that are not cross-origin isolated).
// The backend picks one at load time (WebAssembly.validate, SharedArrayBuffer).
import { mkdirSync } from 'node:fs';
import asc from 'assemblyscript/asc';

mkdirSync('dist/wasm', { recursive: true });
for (const [simd, features] of [
  ['relaxed', 'simd,relaxed-simd'],
  ['simd', 'simd'],
]) {
  for (const shared of [true, false]) {
    const { error, stderr } = await asc.main([
      'src/backend/wasm/assembly/index.ts',
      '-o',
      `dist/wasm/kernels-${simd}${shared ? '' : '-unshared'}.wasm`,
      '-O3',
      '--noAssert',
      '--runtime',
      'stub',
      '--importMemory',
      '--initialMemory',
      '16',
      '--maximumMemory',
      '65536',
      ...(shared ? ['--sharedMemory', '--enable', `${features},threads`] : ['--enable', features]),
    ]);
    if (error) {
      console.error(stderr.toString());
      throw error;
    }
  }
}
