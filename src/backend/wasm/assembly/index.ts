// The wasm backend's kernels. All pointers are byte offsets into the shared linear memory, which
// the host allocates; no kernel allocates, so one module instance per thread can share it.
export { gemm, GEMM_SCRATCH } from './gemm';
export { conv2dForward, conv2dBackwardData, conv2dBackwardFilter, biasBackward, convColumns, spreadColumns, gatherColumns } from './conv';
export { maxpool2dForward, maxpool2dBlocked, maxpool2dBackward, adaptiveAvgpool2d } from './pool';
export { lrnForward, lrnBackward } from './lrn';
export {
  activationForward,
  activationBackward,
  dropoutForward,
  multiply,
  accumulate,
  sgdUpdate,
  linearRows,
  randomFill,
  copyRows,
} from './elementwise';
