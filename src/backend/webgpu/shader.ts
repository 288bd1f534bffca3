/**
 * How a kernel reaches the GPU: a `Shader` (WGSL with its uniform fields and storage bindings) and
 * the `Dispatch`es that run it. The backend binds every dispatch's uniforms at a dynamic offset of
 * one ring buffer, so the WGSL a kernel writes starts with the declarations made here.
 */

import type { WindowGeometry } from '../kernels.js';

export type FieldType = 'u32' | 'i32' | 'f32';

export interface Binding {
  /** The kernel's buffer role (`x`, `weight`, …), also the WGSL variable's name. */
  role: string;
  write: boolean;
}

export interface Shader {
  /** Identifies the pipeline: equal keys, equal code. */
  key: string;
  code: string;
  fields: readonly (readonly [string, FieldType])[];
  bindings: readonly Binding[];
}

export interface Dispatch {
  shader: Shader;
  uniforms: Record<string, number>;
  groups: readonly [number, number, number];
  /** Floats of the backend's scratch buffer this dispatch binds as `scratch` (split-K partial sums). */
  scratch?: number;
}

/** Fields of one type, in order. */
export function fieldsOf<T extends FieldType>(names: readonly string[], type: T): (readonly [string, T])[] {
  return names.map((name) => [name, type] as const);
}

/** A sliding window's geometry (convolution, pooling) as i32 fields: kernels compute signed coordinates. */
export const WINDOW_FIELDS = fieldsOf(['inH', 'inW', 'outH', 'outW', 'kH', 'kW', 'sH', 'sW', 'padT', 'padL', 'dH', 'dW'], 'i32');

export function windowUniforms(g: WindowGeometry): Record<string, number> {
  return {
    inH: g.inHeight,
    inW: g.inWidth,
    outH: g.outHeight,
    outW: g.outWidth,
    kH: g.kernelH,
    kW: g.kernelW,
    sH: g.strideH,
    sW: g.strideW,
    padT: g.padTop,
    padL: g.padLeft,
    dH: g.dilationH,
    dW: g.dilationW,
  };
}

/** The most workgroups along one dispatch dimension that every WebGPU device accepts. */
export const MAX_GROUPS = 65535;
/** Threads per workgroup of the one-thread-per-element kernels. */
export const THREADS = 256;

const cache = new Map<string, Shader>();

/** The shader with this key, built once: `body` is WGSL that may use `p.<field>` and every binding. */
export function shader(key: string, fields: Shader['fields'], bindings: readonly Binding[], body: () => string): Shader {
  let found = cache.get(key);
  if (!found) {
    const struct = `struct Params {\n${fields.map(([name, type]) => `  ${name}: ${type},`).join('\n')}\n}`;
    const declarations = bindings.map(
      (b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.write ? 'read_write' : 'read'}> ${b.role}: array<f32>;`,
    );
    const code = [struct, '@group(0) @binding(0) var<uniform> p: Params;', ...declarations, body()].join('\n');
    found = { key, code, fields, bindings };
    cache.set(key, found);
  }
  return found;
}

/** Storage bindings from role lists: `reads` then `writes`. */
export function roles(reads: readonly string[], writes: readonly string[]): Binding[] {
  return [...reads.map((role) => ({ role, write: false })), ...writes.map((role) => ({ role, write: true }))];
}

/** A grid of at least `groups` workgroups within the per-dimension limit (the kernel recovers its
 * flat index from `workgroup_id` and `num_workgroups`). */
export function grid(groups: number): [number, number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(1, groups), 1, 1];
  const rows = Math.ceil(groups / MAX_GROUPS);
  if (rows > MAX_GROUPS) throw new Error(`webgpu: ${groups} workgroups exceed one dispatch`);
  return [MAX_GROUPS, rows, 1];
}

/** One thread per element `i` of `p.length`: `body` runs for every i < p.length. */
export function perElement(
  key: string,
  fields: Shader['fields'],
  bindings: readonly Binding[],
  body: string,
  helpers = '',
): (uniforms: Record<string, number> & { length: number }) => Dispatch[] {
  const compiled = shader(
    key,
    [['length', 'u32'], ...fields],
    bindings,
    () => `${helpers}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (wg.y * groups.x + wg.x) * ${THREADS}u + lane;
  if (i >= p.length) { return; }
${body}
}`,
  );
  return (uniforms) => [{ shader: compiled, uniforms, groups: grid(Math.ceil(uniforms.length / THREADS)) }];
}

/** WGSL helpers several kernels share. −∞ and NaN come from private variables: WGSL rejects them
 * as constant expressions. */
export const WGSL_COMMON = `
var<private> NEGATIVE_INFINITY_BITS: u32 = 0xff800000u;
var<private> NAN_BITS: u32 = 0x7fc00000u;
fn negativeInfinity() -> f32 { return bitcast<f32>(NEGATIVE_INFINITY_BITS); }
fn notANumber() -> f32 { return bitcast<f32>(NAN_BITS); }
fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
`;
