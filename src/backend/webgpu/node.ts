/**
 * A WebGPU device in Node, from the optional `webgpu` package (Google's Dawn, prebuilt). A real GPU
 * is tried first (Dawn's default: Vulkan, Metal or D3D12); then Dawn's OpenGL ES backend in
 * compatibility mode on a surfaceless EGL display, which Mesa serves on the CPU (llvmpipe) where
 * there is no GPU: slow, but the same WGSL, which is how CI checks this backend. Mesa's Vulkan
 * software driver (lavapipe, Debian 12) gives Dawn no adapter: it lacks dynamic uniform indexing.
 */
import { adapterDescription, requestDevice } from './backend.js';
import { defaultEnvironment } from '../../config.js';

interface DawnModule {
  create(options: string[]): GPU;
  globals: object;
}

const ATTEMPTS: { label: string; options: string[]; featureLevel: 'core' | 'compatibility' }[] = [
  { label: 'the default backend', options: [], featureLevel: 'core' },
  { label: 'OpenGL ES (compatibility, surfaceless EGL)', options: ['backend=opengles'], featureLevel: 'compatibility' },
];

/** Instances stay referenced while their devices live. */
const instances: GPU[] = [];

/** An adapter (with the instance that made it), or why there is none (what was tried). */
export async function nodeGpuAdapter(): Promise<{ gpu: GPU; adapter: GPUAdapter } | string> {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu' as string)) as DawnModule;
  } catch (error) {
    return `the optional package 'webgpu' (Dawn for Node) could not be loaded: ${(error as Error).message.split('\n')[0]}`;
  }
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage, GPUMapMode, … as in a browser
  defaultEnvironment('EGL_PLATFORM', 'surfaceless');
  for (const attempt of ATTEMPTS) {
    const gpu = dawn.create(attempt.options);
    const adapter = await gpu.requestAdapter({ featureLevel: attempt.featureLevel }).catch(() => null);
    if (adapter) {
      instances.push(gpu);
      return { gpu, adapter };
    }
  }
  const tried = ATTEMPTS.map((a) => a.label).join(', then ');
  return `no WebGPU adapter: Dawn tried ${tried} (without a GPU: apt-get install libegl1 libgles2 libegl-mesa0 libgl1-mesa-dri)`;
}

/** A device with the limits the kernels need and its adapter's description, or why there is none. */
export async function nodeGpuDevice(): Promise<{ device: GPUDevice; description: string } | string> {
  const found = await nodeGpuAdapter();
  if (typeof found === 'string') return found;
  return { device: await requestDevice(found.adapter), description: adapterDescription(found.adapter) };
}
