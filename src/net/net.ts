/**
 * A network built from a `NetSpec`: every shape inferred and checked up front, every buffer
 * (activations, gradients, parameters, layer workspaces) allocated once for the chosen batch size,
 * so forward and backward allocate nothing.
 */
import type { Backend, FloatArray } from '../backend/backend.js';
import { createLayer, type Layer, type Param, SpecError } from '../layers/index.js';
import { Philox, type PhiloxState, streams } from '../random.js';
import { formatShape, type Shape, sizeOf, Tensor } from '../tensor.js';
import { type Initializer, pytorchDefaultInit } from './init.js';
import type { LayerSpec, NetSpec } from './spec.js';

export interface BuildOptions {
  /** Where its tensors live and its kernels run (`new ReferenceBackend()`: the readable oracle). */
  backend: Backend;
  batch: number;
  /** Seeds initialisation and dropout. Default 0. */
  seed?: number;
  /** Also compute gradients with respect to the net's inputs. Default false. */
  inputGradients?: boolean;
  init?: Initializer;
  /** Parameters by name, every one with its shape (as `loadTensors`), written instead of initialised ones. */
  weights?: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;
  /**
   * Forward passes only: no gradient buffers, for the parameters or the activations — about half the memory of a net that
   * trains (the torchvision net at batch 64: 541 MiB of wasm memory against 1,043). `backward`, and reading or training on
   * gradients, are refused.
   */
  inference?: boolean;
}

interface Blob {
  name: string;
  shape: Shape;
  data: Tensor;
  /** Null where no gradient flows (labels, inputs unless asked for). */
  grad: Tensor | null;
  /** Where a second consumer's gradient lands before it is added to `grad`. */
  scratch: Tensor | null;
  /** Produced by a layer (false for the net's inputs). */
  produced: boolean;
  consumers: number;
}

interface Node {
  layer: Layer;
  inputs: Blob[];
  outputs: Blob[];
  params: Record<string, Param>;
  workspace: Record<string, Tensor>;
}

export class Net {
  readonly params: Param[] = [];
  private readonly blobs = new Map<string, Blob>();
  private readonly nodes: Node[] = [];
  private rng: Philox;
  /** A data-parallel rank's place in the whole batch (`ForwardArgs.firstExample`). */
  firstExample = 0;
  private lastForwardTraining = false;
  /** Blobs whose gradient no trainable parameter needs (below frozen layers): backward stops there. */
  private settled = new Set<Blob>();

  private constructor(
    readonly spec: NetSpec,
    readonly backend: Backend,
    private readonly plan: NetPlan,
    seed: number,
    /** Built for forward passes only (`BuildOptions.inference`): no gradients. */
    readonly inference: boolean,
  ) {
    this.rng = new Philox(seed, streams.steps);
  }

  get batch(): number {
    return this.plan.batch;
  }

  static build(spec: NetSpec, options: BuildOptions): Net {
    const seed = options.seed ?? 0;
    if (options.inference && options.inputGradients) throw new Error('a net built for inference keeps no input gradients');
    const plan = planNet(spec, options.batch); // validates everything before allocating anything
    const net = new Net(spec, options.backend, plan, seed, options.inference ?? false);
    net.allocate(options.inputGradients ?? false);
    try {
      if (options.weights) net.loadTensors(options.weights);
      else net.initialise(options.init ?? pytorchDefaultInit, seed);
    } catch (error) {
      net.dispose();
      throw error;
    }
    return net;
  }

  get layers(): readonly Layer[] {
    return this.nodes.map((n) => n.layer);
  }

  get inputNames(): string[] {
    return Object.keys(this.spec.inputs);
  }

  /** Blobs no layer consumes: what the net computes. */
  get outputNames(): string[] {
    return [...this.blobs.values()].filter((b) => b.produced && b.consumers === 0).map((b) => b.name);
  }

  /** The blobs a layer reads and writes. */
  layerInputs(layer: string): string[] {
    return this.node(layer).inputs.map((b) => b.name);
  }

  layerOutputs(layer: string): string[] {
    return this.node(layer).outputs.map((b) => b.name);
  }

  private node(layer: string): Node {
    const node = this.nodes.find((n) => n.layer.name === layer);
    if (!node) throw new Error(`no layer '${layer}' in the net`);
    return node;
  }

  shapeOf(blob: string): Shape {
    return this.blob(blob).shape;
  }

  param(name: string): Param {
    const param = this.params.find((p) => p.name === name);
    if (!param) throw new Error(`no parameter '${name}' (have: ${this.params.map((p) => p.name).join(', ')})`);
    return param;
  }

  setInput(name: string, data: ArrayLike<number>): void {
    if (!(name in this.spec.inputs)) throw new Error(`'${name}' is not an input of the net (inputs: ${this.inputNames.join(', ')})`);
    const blob = this.blob(name);
    if (data.length !== blob.data.size) {
      throw new Error(`input '${name}' needs ${blob.data.size} values (shape ${formatShape(blob.shape)}), got ${data.length}`);
    }
    blob.data.write(data);
  }

  /** The data of any blob (input, activation or output). */
  read(name: string): Promise<FloatArray> {
    return this.blob(name).data.read();
  }

  readSync(name: string): FloatArray {
    return this.blob(name).data.readSync();
  }

  /** The gradient of the last backward pass with respect to a blob. */
  readGrad(name: string): Promise<FloatArray> {
    const grad = this.blob(name).grad;
    if (this.inference) throw this.noGradients();
    if (!grad) throw new Error(`no gradient is kept for '${name}' (net inputs need inputGradients: true)`);
    return grad.read();
  }

  forward(options: { training?: boolean; profile?: LayerProfile } = {}): void {
    const training = options.training ?? false;
    this.lastForwardTraining = training;
    for (const node of this.nodes) {
      const start = options.profile ? performance.now() : 0;
      node.layer.forward({
        backend: this.backend,
        x: node.inputs.map((b) => b.data),
        y: node.outputs.map((b) => b.data),
        params: node.params,
        workspace: node.workspace,
        training,
        rng: this.rng,
        firstExample: this.firstExample,
      });
      if (options.profile) addTime(options.profile, node.layer.name, 'forward', performance.now() - start);
    }
  }

  /**
   * Backpropagates from the given output gradients (default: 1 for a scalar loss produced by the
   * last layer); outputs not given receive zero. Parameter gradients are overwritten.
   */
  backward(outputGrads?: Record<string, ArrayLike<number>>, options: { profile?: LayerProfile } = {}): void {
    if (this.inference) throw this.noGradients();
    const written = new Set<Blob>();
    for (const [name, grad] of Object.entries(outputGrads ?? { [this.defaultLoss()]: [1] })) {
      const blob = this.blob(name);
      if (!blob.grad) throw new Error(`'${name}' carries no gradient`);
      blob.grad.write(grad);
      written.add(blob);
    }
    for (const node of [...this.nodes].reverse()) {
      if (node.outputs.every((blob) => this.settled.has(blob))) continue;
      const start = options.profile ? performance.now() : 0;
      for (const out of node.outputs) {
        if (!written.has(out)) this.backend.run('fill', { length: out.grad!.size, value: 0 }, { y: out.grad!.buffer });
      }
      const accumulateAfter: Blob[] = [];
      const dx = node.inputs.map((blob, i) => {
        if (!blob.grad || !node.layer.differentiable(i) || this.settled.has(blob)) return null;
        if (!written.has(blob)) {
          written.add(blob);
          return blob.grad;
        }
        accumulateAfter.push(blob);
        return blob.scratch!;
      });
      node.layer.backward({
        backend: this.backend,
        x: node.inputs.map((b) => b.data),
        y: node.outputs.map((b) => b.data),
        dy: node.outputs.map((b) => b.grad!),
        dx,
        params: node.params,
        workspace: node.workspace,
        training: this.lastForwardTraining,
        rng: this.rng,
        firstExample: this.firstExample,
      });
      for (const blob of accumulateAfter) {
        this.backend.run('accumulate', { length: blob.grad!.size }, { x: blob.scratch!.buffer, y: blob.grad!.buffer });
      }
      if (options.profile) addTime(options.profile, node.layer.name, 'backward', performance.now() - start);
    }
  }

  /**
   * Fine-tuning: these layers' parameters will not be trained, so backward neither computes their
   * gradients nor carries gradients below the last layer that still needs one (a frozen stack
   * under a new classifier costs the classifier's backward alone: the paper net's forward and
   * backward at batch 32 took 947 ms with all but fc8 frozen against 2,574 ms, native backend, 2
   * threads). Their `grad` tensors then go stale; the net's input gradients, when kept, still flow.
   */
  freeze(layers: readonly string[]): void {
    const frozen = new Set(layers);
    const settled = new Set<Blob>();
    const inputsKept = this.inputNames.some((name) => this.blob(name).grad !== null);
    for (const node of this.nodes) {
      const trains = Object.keys(node.params).length > 0 && !frozen.has(node.layer.name);
      const below = node.inputs.some((blob) => !settled.has(blob) && (this.producer(blob) !== undefined || inputsKept));
      if (!trains && !below) for (const blob of node.outputs) settled.add(blob);
    }
    for (const name of this.inputNames) if (!inputsKept) settled.add(this.blob(name));
    this.settled = settled;
  }

  private noGradients(): Error {
    return new Error('the net was built for inference (no gradients): build it without inference: true to train');
  }

  private producer(blob: Blob): Node | undefined {
    return this.nodes.find((n) => n.outputs.includes(blob));
  }

  /** Parameter values by name. */
  async readParams(): Promise<Record<string, FloatArray>> {
    const out: Record<string, FloatArray> = {};
    for (const p of this.params) out[p.name] = await p.value.read();
    return out;
  }

  /** Writes parameters by name; with `strict` (default) every parameter must be given, and no other. */
  loadParams(values: Record<string, ArrayLike<number>>, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    for (const name of Object.keys(values)) {
      if (!this.params.some((p) => p.name === name))
        throw new Error(`parameter '${name}' does not exist in the net (have: ${this.params.map((p) => p.name).join(', ')})`);
    }
    for (const p of this.params) {
      const value = values[p.name];
      if (!value) {
        if (strict) throw new Error(`parameter '${p.name}' is missing`);
        continue;
      }
      if (value.length !== p.value.size)
        throw new Error(`parameter '${p.name}' needs ${p.value.size} values (shape ${formatShape(p.shape)}), got ${value.length}`);
      p.value.write(value);
    }
  }

  /** Loads named tensors (a checkpoint's): every parameter present with its exact shape, nothing extra. */
  loadTensors(tensors: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>): void {
    for (const p of this.params) {
      const t = tensors[p.name];
      if (t && formatShape(t.shape) !== formatShape(p.shape))
        throw new Error(`parameter '${p.name}' is ${formatShape(t.shape)}, the net's is ${formatShape(p.shape)}`);
    }
    this.loadParams(Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.data])));
  }

  /** The dropout generator's position, for exact resume. */
  randomState(): PhiloxState {
    return this.rng.state();
  }

  setRandomState(state: PhiloxState): void {
    this.rng = Philox.fromState(state);
  }

  /** Bytes of backend memory the net holds: parameters, gradients, activations, workspaces. */
  plannedBytes(): number {
    const tensors = [...this.blobs.values()]
      .flatMap((b) => [b.data, b.grad, b.scratch])
      .concat(
        this.nodes.flatMap((n) => Object.values(n.workspace)),
        this.params.flatMap((p) => (this.inference ? [p.value] : [p.value, p.grad])),
      );
    return tensors.reduce((n, t) => n + (t ? 4 * t.size : 0), 0);
  }

  dispose(): void {
    for (const blob of this.blobs.values()) for (const t of [blob.data, blob.grad, blob.scratch]) t?.free();
    for (const node of this.nodes) for (const t of Object.values(node.workspace)) t.free();
    for (const p of this.params) {
      p.value.free();
      if (!this.inference) p.grad.free();
    }
  }

  private blob(name: string): Blob {
    const blob = this.blobs.get(name);
    if (!blob) throw new Error(`no blob '${name}' in the net (have: ${[...this.blobs.keys()].join(', ')})`);
    return blob;
  }

  private defaultLoss(): string {
    const last = this.nodes[this.nodes.length - 1]!;
    const out = last.outputs[0]!;
    if (out.data.size !== 1)
      throw new Error(`backward(): the last layer '${last.layer.name}' does not output a scalar loss; pass the output gradients`);
    return out.name;
  }

  private allocate(inputGradients: boolean): void {
    const { plan } = this;
    const consumers = new Map<string, number>();
    for (const { layer, inputs } of plan.layers) {
      inputs.forEach((input, i) => {
        if (layer.differentiable(i)) consumers.set(input, (consumers.get(input) ?? 0) + 1);
      });
    }
    const produced = new Set(plan.layers.flatMap((p) => p.outputs));
    for (const [name, shape] of plan.shapes) {
      const uses = consumers.get(name) ?? 0;
      const wantsGrad = !this.inference && (produced.has(name) || (inputGradients && uses > 0));
      this.blobs.set(name, {
        name,
        shape,
        produced: produced.has(name),
        consumers: uses,
        data: Tensor.zeros(this.backend, shape),
        grad: wantsGrad ? Tensor.zeros(this.backend, shape) : null,
        scratch: wantsGrad && uses > 1 ? Tensor.zeros(this.backend, shape) : null,
      });
    }
    for (const { layer, inputs, outputs } of plan.layers) {
      const params: Record<string, Param> = {};
      for (const [role, decl] of Object.entries(layer.paramDecls())) {
        const value = Tensor.zeros(this.backend, decl.shape);
        const [name, shape, fanIn] = [`${layer.name}.${role}`, decl.shape, decl.fanIn];
        const param: Param = this.inference
          ? Object.defineProperty({ name, shape, fanIn, value } as Param, 'grad', {
              get: () => {
                throw this.noGradients();
              },
            })
          : { name, shape, fanIn, value, grad: Tensor.zeros(this.backend, decl.shape) };
        params[role] = param;
        this.params.push(param);
      }
      const workspace = Object.fromEntries(Object.entries(layer.workspaceShapes()).map(([k, s]) => [k, Tensor.zeros(this.backend, s)]));
      this.nodes.push({ layer, params, workspace, inputs: inputs.map((i) => this.blob(i)), outputs: outputs.map((o) => this.blob(o)) });
    }
  }

  /** Each parameter draws from its own Philox stream of the net's seed, on the backend. */
  private initialise(init: Initializer, seed: number): void {
    let index = 0;
    for (const node of this.nodes) {
      for (const [role, p] of Object.entries(node.params)) {
        const rule = init({ name: p.name, layer: node.layer.name, role, shape: p.shape, fanIn: p.fanIn });
        const length = p.value.size,
          y = p.value.buffer,
          stream = streams.parameter(index++);
        if (rule.distribution === 'constant') this.backend.run('fill', { length, value: rule.value }, { y });
        else if (rule.distribution === 'uniform')
          this.backend.run('random_fill', { length, seed, stream, distribution: 'uniform', a: rule.low, b: rule.high }, { y });
        else this.backend.run('random_fill', { length, seed, stream, distribution: 'normal', a: rule.mean, b: rule.std }, { y });
      }
    }
  }

  /** One row per layer: output shapes, parameter count and multiply-adds per example. */
  summary(): LayerSummary[] {
    return summarize(this.plan);
  }
}

/** A spec with every layer built and every blob's shape inferred; nothing allocated. */
export interface NetPlan {
  layers: { layer: Layer; inputs: string[]; outputs: string[] }[];
  shapes: Map<string, Shape>;
  batch: number;
}

/** Infers and checks every shape of a spec for a batch size; throws a `SpecError` naming the
 * layer and the problem. */
/** The shape of every parameter a spec declares, by name (`conv1.weight`), in the net's order. */
export function paramShapes(spec: NetSpec): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const { layer } of planNet(spec, 1).layers)
    for (const [role, decl] of Object.entries(layer.paramDecls())) shapes.set(`${layer.name}.${role}`, decl.shape);
  return shapes;
}

export function planNet(spec: NetSpec, batch: number): NetPlan {
  if (!Number.isInteger(batch) || batch < 1) throw new SpecError(`batch size must be a positive integer, got ${batch}`);
  if (!spec || typeof spec.inputs !== 'object' || spec.inputs === null || Object.keys(spec.inputs).length === 0)
    throw new SpecError('net spec: "inputs" must name at least one input with its shape');
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) throw new SpecError('net spec: "layers" must be a non-empty list');
  const shapes = new Map<string, Shape>();
  for (const [name, shape] of Object.entries(spec.inputs)) {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new SpecError(`input '${name}': shape must be a list of positive integers, got ${JSON.stringify(shape)}`);
    }
    shapes.set(name, [batch, ...shape]);
  }
  const seen = new Set<string>();
  let previous = Object.keys(spec.inputs)[0]!;
  const layers = spec.layers.map((layerSpec, index) => {
    const name = checkHeader(layerSpec, index, seen);
    const inputs = layerSpec.inputs ?? [previous];
    if (!Array.isArray(inputs)) throw new SpecError(`${name}: inputs must be a list of blob names`);
    if (new Set(inputs).size !== inputs.length) throw new SpecError(`${name}: an input is listed twice`);
    for (const input of inputs)
      if (!shapes.has(input)) throw new SpecError(`${name}: input '${input}' is not a net input or an earlier layer's output`);
    const layer = createLayer(
      layerSpec,
      inputs.map((i) => shapes.get(i)!),
    );
    const count = layer.outputShapes.length;
    const outputs = layerSpec.outputs ?? (count === 1 ? [name] : layer.outputShapes.map((_, i) => `${name}:${i}`));
    if (!Array.isArray(outputs) || outputs.length !== count)
      throw new SpecError(`${name}: produces ${count} output(s), but outputs lists ${JSON.stringify(outputs)}`);
    for (const [i, out] of outputs.entries()) {
      if (shapes.has(out)) throw new SpecError(`${name}: output '${out}' is already a blob of the net (each blob is written once)`);
      shapes.set(out, layer.outputShapes[i]!);
    }
    previous = outputs[0]!;
    return { layer, inputs, outputs };
  });
  return { layers, shapes, batch };
}

function checkHeader(layerSpec: LayerSpec, index: number, seen: Set<string>): string {
  if (!layerSpec || typeof layerSpec !== 'object') throw new SpecError(`layer #${index + 1}: must be an object`);
  const name = layerSpec.name;
  if (typeof name !== 'string' || name === '') throw new SpecError(`layer #${index + 1}: needs a "name"`);
  if (seen.has(name)) throw new SpecError(`layer #${index + 1}: the name '${name}' is used twice`);
  if (typeof layerSpec.type !== 'string') throw new SpecError(`${name}: needs a "type"`);
  seen.add(name);
  return name;
}

/** One row per layer of a plan: output shapes, parameter count and multiply-adds per example. */
export function summarize(plan: NetPlan): LayerSummary[] {
  return plan.layers.map(({ layer, outputs }) => ({
    name: layer.name,
    type: layer.spec.type,
    outputShapes: outputs.map((o) => plan.shapes.get(o)!),
    params: Object.values(layer.paramDecls()).reduce((n, p) => n + sizeOf(p.shape), 0),
    macsPerExample: layer.macs() / plan.batch,
  }));
}

/** Milliseconds per layer, summed over the passes profiled (host time: exact on CPU backends). */
export type LayerProfile = Map<string, { forward: number; backward: number }>;

function addTime(profile: LayerProfile, layer: string, pass: 'forward' | 'backward', ms: number): void {
  const entry = profile.get(layer) ?? { forward: 0, backward: 0 };
  entry[pass] += ms;
  profile.set(layer, entry);
}

export interface LayerSummary {
  name: string;
  type: string;
  outputShapes: Shape[];
  params: number;
  macsPerExample: number;
}

export function formatSummary(rows: LayerSummary[]): string {
  const table = rows.map((r) => [
    r.name,
    r.type,
    r.outputShapes.map(formatShape).join(' '),
    r.params.toLocaleString('en-US'),
    r.macsPerExample.toLocaleString('en-US'),
  ]);
  const totals = [
    'total',
    '',
    '',
    rows.reduce((n, r) => n + r.params, 0).toLocaleString('en-US'),
    rows.reduce((n, r) => n + r.macsPerExample, 0).toLocaleString('en-US'),
  ];
  const all = [['layer', 'type', 'output', 'params', 'mult-adds/example'], ...table, totals];
  const widths = all[0]!.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  return all.map((row) => row.map((cell, c) => (c >= 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')).join('\n');
}
