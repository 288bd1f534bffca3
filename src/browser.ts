/** The part of the library that runs in browsers as well as in Node: backends, layers, nets, the
 * model zoo's specs, SGD and safetensors. It imports no Node module and no npm package, so a page
 * can load it as plain ES modules (dist/src/browser.js) without a bundler. */
export type { Backend, DeviceBuffer, FloatArray } from './backend/backend.js';
export type { KernelName, KernelTable } from './backend/kernels.js';
export { ReferenceBackend } from './backend/reference/backend.js';
export { WasmBackend, type WasmBackendOptions } from './backend/wasm/backend.js';
export { setWasmPaths } from './backend/wasm/platform.js';
export { WebGpuBackend, type WebGpuBackendOptions } from './backend/webgpu/backend.js';
export { Tensor, type Shape, sizeOf, formatShape } from './tensor.js';
export { Philox, philox4x32, type PhiloxState } from './random.js';
export { createLayer, layerTypes, Layer, SpecError, type Param } from './layers/index.js';
export type * from './net/spec.js';
export { Net, formatSummary, type BuildOptions, type LayerSummary, type LayerProfile } from './net/net.js';
export { pytorchDefaultInit, type Initializer, type InitRule, type ParamInfo } from './net/init.js';
export { planNet, summarize, type NetPlan } from './net/net.js';
export {
  alexnet,
  alexnetCaffe,
  alexnetSmall,
  alexnetTorchvision,
  type AlexNetOptions,
  type SmallAlexNetOptions,
  type TorchvisionOptions,
} from './models/alexnet.js';
export { parseSafetensors, serializeSafetensors, type SafetensorsFile, type NamedTensor } from './io/safetensors.js';
export { Sgd, type SgdOptions } from './train/sgd.js';
