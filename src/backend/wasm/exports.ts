/** The functions the kernel module exports, in a fixed order: a task names one by its index. */
export const WASM_FUNCTIONS = [
  'gemm',
  'conv2dForward',
  'conv2dBackwardData',
  'conv2dBackwardFilter',
  'biasBackward',
  'maxpool2dForward',
  'maxpool2dBlocked',
  'maxpool2dBackward',
  'adaptiveAvgpool2d',
  'lrnForward',
  'lrnBackward',
  'activationForward',
  'activationBackward',
  'dropoutForward',
  'multiply',
  'accumulate',
  'sgdUpdate',
  'linearRows',
  'randomFill',
  'convColumns',
  'spreadColumns',
  'gatherColumns',
  'copyRows',
] as const;

export type WasmFunction = (typeof WASM_FUNCTIONS)[number];

export type KernelExports = Record<WasmFunction, (...args: number[]) => void> & { GEMM_SCRATCH: WebAssembly.Global };
