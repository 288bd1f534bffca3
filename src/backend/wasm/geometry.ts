// The geometry block of a convolution or a pooling window: i32 fields at these indices, written by
// the host (backend.ts) and read by the kernels (assembly/conv.ts, assembly/pool.ts). Plain
// constants, so this one file compiles as TypeScript and as AssemblyScript alike.
export const BATCH = 0;
export const IN_C = 1;
export const IN_H = 2;
export const IN_W = 3;
export const OUT_C = 4;
export const OUT_H = 5;
export const OUT_W = 6;
export const K_H = 7;
export const K_W = 8;
export const STRIDE_H = 9;
export const STRIDE_W = 10;
export const PAD_T = 11;
export const PAD_L = 12;
export const DIL_H = 13;
export const DIL_W = 14;
export const GROUPS = 15;
export const GEOMETRY_FIELDS = 16;
