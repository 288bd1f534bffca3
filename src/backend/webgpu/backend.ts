/**
 * The WebGPU backend: buffers in GPU memory, kernels in WGSL (kernels.ts, gemm.ts), enqueued into
 * one command encoder and submitted when the host needs the queue (`write`, `read`, `flush`) or the
 * uniform ring is full. Nothing returns to the host between kernels; `read` is the one wait.
 *
 * Each dispatch's parameters take one slot of a uniform ring buffer bound at a dynamic offset, so
 * a training step's bind groups (one per kernel and set of buffers) are made once and reused.
 */
import type { Backend, DeviceBuffer, FloatArray } from '../backend.js';
import type { KernelName, KernelTable } from '../kernels.js';
import { planners } from './kernels.js';
import type { Dispatch, Shader } from './shader.js';

/** Bytes per uniform slot: the largest `minUniformBufferOffsetAlignment` WebGPU allows, and room
 * for 64 four-byte fields. */
const SLOT = 256;
const RING_SLOTS = 1024;

class GpuBuffer implements DeviceBuffer {
  constructor(
    readonly backend: WebGpuBackend,
    readonly id: number,
    readonly length: number,
    public gpu: GPUBuffer | null,
  ) {}
}

interface Pipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export interface WebGpuBackendOptions {
  /** A device to run on (its adapter's limits apply); default: one from `navigator.gpu`. */
  device?: GPUDevice;
  /** Describes the device in `name` messages (an adapter's description). */
  description?: string;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly precision = 'float32';
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** Bind group keys by the buffer ids they hold, so `free` forgets them. */
  private readonly bindGroupsOf = new Map<number, string[]>();
  private readonly ring: GPUBuffer;
  private readonly staged = new ArrayBuffer(SLOT * RING_SLOTS);
  private slotsUsed = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Buffers freed while commands that use them wait in the encoder: destroyed after submit. */
  private doomed: GPUBuffer[] = [];
  private nextId = 1;
  private failure: string | null = null;
  /** Partial sums of split-K products, grown to the largest any dispatch asked for. */
  private scratch: GpuBuffer | null = null;

  private constructor(
    readonly device: GPUDevice,
    readonly description: string,
  ) {
    this.ring = device.createBuffer({ size: SLOT * RING_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.addEventListener('uncapturederror', (event) => {
      this.failure ??= (event as GPUUncapturedErrorEvent).error.message;
    });
    void device.lost.then((info) => {
      this.failure ??= `the GPU device was lost (${info.reason}): ${info.message}`;
    });
  }

  /** A backend on `options.device`, or on a device from `navigator.gpu` with the adapter's limits. */
  static async create(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    if (options.device) return new WebGpuBackend(options.device, options.description ?? 'a WebGPU device');
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new Error('webgpu: this JavaScript host has no navigator.gpu');
    const adapter = (await gpu.requestAdapter()) ?? (await gpu.requestAdapter({ featureLevel: 'compatibility' }));
    if (!adapter) throw new Error('webgpu: navigator.gpu offers no adapter (tried the default and compatibility feature levels)');
    return new WebGpuBackend(await requestDevice(adapter), adapterDescription(adapter));
  }

  allocate(length: number): DeviceBuffer {
    if (!Number.isInteger(length) || length < 0) throw new Error(`allocate: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(4, length * 4);
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(
        `webgpu: a buffer of ${length} floats (${mib(bytes)}) exceeds this device's largest storage binding (${mib(limit)}, ${this.description})`,
      );
    }
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    return new GpuBuffer(this, this.nextId++, length, this.device.createBuffer({ size: bytes, usage }));
  }

  free(buffer: DeviceBuffer): void {
    const gpu = this.gpu(buffer);
    (buffer as GpuBuffer).gpu = null;
    for (const key of this.bindGroupsOf.get((buffer as GpuBuffer).id) ?? []) this.bindGroups.delete(key);
    this.bindGroupsOf.delete((buffer as GpuBuffer).id);
    if (this.encoder) this.doomed.push(gpu);
    else gpu.destroy();
  }

  write(buffer: DeviceBuffer, data: ArrayLike<number>, offset = 0): void {
    const target = this.gpu(buffer);
    if (offset + data.length > buffer.length) {
      throw new Error(`write: ${data.length} values at offset ${offset} do not fit a buffer of ${buffer.length}`);
    }
    this.submit(); // the write must land after the kernels enqueued before it
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    if (values.length > 0) this.device.queue.writeBuffer(target, offset * 4, values.buffer, values.byteOffset, values.byteLength);
  }

  async read(buffer: DeviceBuffer): Promise<FloatArray> {
    const source = this.gpu(buffer);
    if (buffer.length === 0) return new Float32Array(0);
    const bytes = buffer.length * 4;
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.encode().copyBufferToBuffer(source, 0, staging, 0, bytes);
    this.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      this.check();
      return new Float32Array(staging.getMappedRange().slice(0));
    } catch (error) {
      this.check();
      throw error;
    } finally {
      staging.destroy();
    }
  }

  run<K extends KernelName>(kernel: K, params: KernelTable[K]['params'], buffers: KernelTable[K]['buffers']): void {
    const bound = buffers as Record<string, DeviceBuffer | undefined>;
    const present = new Set(Object.keys(bound).filter((role) => bound[role]));
    for (const dispatch of planners[kernel](params, present)) this.dispatch(dispatch, bound);
  }

  async flush(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  async dispose(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.device.destroy();
  }

  private dispatch(dispatch: Dispatch, buffers: Record<string, DeviceBuffer | undefined>): void {
    const { shader } = dispatch;
    const handles = shader.bindings.map(({ role }) => {
      const buffer = role === 'scratch' ? this.scratchOf(dispatch.scratch ?? 0) : buffers[role];
      if (!buffer) throw new Error(`webgpu ${shader.key}: no '${role}' buffer`);
      this.gpu(buffer);
      return buffer as GpuBuffer;
    });
    const writes = handles.filter((_, i) => shader.bindings[i]!.write);
    if (writes.some((h) => handles.indexOf(h) !== handles.lastIndexOf(h))) {
      throw new Error(`webgpu ${shader.key}: a buffer it writes is also bound to another role (in-place kernels are not supported)`);
    }
    if (this.slotsUsed === RING_SLOTS) this.submit();
    const pipeline = this.pipeline(shader);
    const slot = this.slotsUsed++;
    this.pack(shader, dispatch.uniforms, slot);
    const pass = this.computePass();
    pass.setPipeline(pipeline.pipeline);
    pass.setBindGroup(0, this.bindGroup(shader, pipeline, handles), [slot * SLOT]);
    pass.dispatchWorkgroups(...dispatch.groups);
  }

  private scratchOf(floats: number): GpuBuffer {
    if (!this.scratch || this.scratch.length < floats) {
      if (this.scratch) this.free(this.scratch);
      this.scratch = this.allocate(floats) as GpuBuffer;
    }
    return this.scratch;
  }

  private pack(shader: Shader, uniforms: Record<string, number>, slot: number): void {
    const words = new DataView(this.staged, slot * SLOT, SLOT);
    shader.fields.forEach(([name, type], i) => {
      const value = uniforms[name];
      if (value === undefined) throw new Error(`webgpu ${shader.key}: no value for uniform '${name}'`);
      if (type === 'f32') words.setFloat32(i * 4, value, true);
      else if (type === 'i32') words.setInt32(i * 4, value, true);
      else words.setUint32(i * 4, value, true);
    });
  }

  private pipeline(shader: Shader): Pipeline {
    let found = this.pipelines.get(shader.key);
    if (!found) {
      const layout = this.device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
          ...shader.bindings.map((b, i) => ({
            binding: i + 1,
            visibility: GPUShaderStage.COMPUTE,
            buffer: { type: b.write ? ('storage' as const) : ('read-only-storage' as const) },
          })),
        ],
      });
      const module = this.device.createShaderModule({ code: shader.code, label: shader.key });
      const pipeline = this.device.createComputePipeline({
        label: shader.key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
      });
      found = { pipeline, layout };
      this.pipelines.set(shader.key, found);
    }
    return found;
  }

  private bindGroup(shader: Shader, pipeline: Pipeline, handles: GpuBuffer[]): GPUBindGroup {
    const key = `${shader.key}|${handles.map((h) => h.id).join(',')}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      group = this.device.createBindGroup({
        layout: pipeline.layout,
        entries: [
          { binding: 0, resource: { buffer: this.ring, size: SLOT } },
          ...handles.map((h, i) => ({ binding: i + 1, resource: { buffer: h.gpu! } })),
        ],
      });
      this.bindGroups.set(key, group);
      for (const h of new Set(handles)) this.bindGroupsOf.set(h.id, [...(this.bindGroupsOf.get(h.id) ?? []), key]);
    }
    return group;
  }

  private encode(): GPUCommandEncoder {
    this.pass?.end();
    this.pass = null;
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.encode().beginComputePass();
    return this.pass;
  }

  /** Sends the enqueued kernels to the GPU, their uniforms first. */
  private submit(): void {
    if (!this.encoder) return;
    const encoder = this.encode();
    if (this.slotsUsed > 0) this.device.queue.writeBuffer(this.ring, 0, this.staged, 0, this.slotsUsed * SLOT);
    this.device.queue.submit([encoder.finish()]);
    this.encoder = null;
    this.slotsUsed = 0;
    for (const buffer of this.doomed) buffer.destroy();
    this.doomed = [];
  }

  private check(): void {
    if (this.failure) throw new Error(`webgpu: ${this.failure}`);
  }

  private gpu(buffer: DeviceBuffer): GPUBuffer {
    if (!(buffer instanceof GpuBuffer) || buffer.backend !== this) throw new Error('buffer belongs to another backend');
    if (!buffer.gpu) throw new Error('buffer was freed');
    return buffer.gpu;
  }
}

/** A device with the adapter's own limits on what the kernels need (the defaults are lower: 128 MiB
 * bindings; in compatibility mode 4 storage buffers per stage and 128 threads per workgroup). */
export async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const wanted = [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxStorageBuffersPerShaderStage',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
  ] as const;
  const requiredLimits = Object.fromEntries(wanted.map((name) => [name, adapter.limits[name]]));
  return adapter.requestDevice({ requiredLimits });
}

export function adapterDescription(adapter: GPUAdapter): string {
  const info = adapter.info;
  return [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'an unnamed adapter';
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
