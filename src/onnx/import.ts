/**
 * ONNX import: a model's graph becomes a `NetSpec` plus named parameters, one engine layer per ONNX
 * node (constant-only nodes such as a weight's Transpose are folded at import). What the engine
 * cannot express is refused with an `UnsupportedOnnxError` naming the node and the reason.
 */
import { readFileBytes } from '../io/files.js';
import { createLayer } from '../layers/index.js';
import { planNet } from '../net/net.js';
import type { LayerSpec, NetSpec } from '../net/spec.js';
import { formatShape, type Shape, sizeOf } from '../tensor.js';
import { fuseTorchLrn } from './patterns.js';
import { type AttributeProto, decodeModel, type ModelProto, type NodeProto, tensorValues } from './proto.js';

export class UnsupportedOnnxError extends Error {
  override name = 'UnsupportedOnnxError';
}

export interface ConstantTensor {
  shape: number[];
  data: Float32Array;
}

export interface ImportedModel {
  spec: NetSpec;
  batch: number;
  params: Record<string, Float32Array>;
  /** The graph's outputs: blob names of the built net. */
  outputs: string[];
  /** The model's metadata_props (alexnet-ts records preprocessing and class names there). */
  metadata: Record<string, string>;
}

export interface ImportOptions {
  /** Values for graph inputs that feed weight slots (ONNX's node tests pass weights as inputs). */
  inputValues?: Record<string, ConstantTensor>;
  /** The size of a symbolic first dimension. */
  batch?: number;
  source?: string;
}

export function loadOnnxFile(path: string, options: ImportOptions = {}): ImportedModel {
  return importOnnx(decodeModel(readFileBytes(path, 'ONNX model'), path), { source: path, ...options });
}

/** AttributeProto.AttributeType values, by what the reader asks for. */
const ATTRIBUTE_TYPES = { float: 1, int: 2, string: 3, ints: 7 } as const;

/** Attribute reader for one node; an attribute of another type than the one asked for is refused
 * (a FLOAT `strides` must not silently become the default). */
function attributes(node: NodeProto) {
  const byName = new Map((node.attribute ?? []).map((a) => [a.name, a] as [string, AttributeProto]));
  const get = (name: string, kind: keyof typeof ATTRIBUTE_TYPES) => {
    const a = byName.get(name);
    if (a?.type !== undefined && a.type !== 0 && a.type !== ATTRIBUTE_TYPES[kind]) {
      throw new UnsupportedOnnxError(
        `${node.opType} node '${node.name ?? ''}': attribute '${name}' has type ${a.type}, not ${kind} (${ATTRIBUTE_TYPES[kind]})`,
      );
    }
    return a;
  };
  return {
    has: (name: string) => byName.has(name),
    int: (name: string, fallback: number) => get(name, 'int')?.i ?? fallback,
    float: (name: string, fallback: number) => get(name, 'float')?.f ?? fallback,
    ints: (name: string, fallback: number[]) => (byName.has(name) ? (get(name, 'ints')!.ints ?? []) : fallback),
    string: (name: string, fallback: string) => {
      const s = get(name, 'string')?.s;
      return s ? new TextDecoder().decode(s) : fallback;
    },
  };
}

class Importer {
  readonly layers: LayerSpec[] = [];
  readonly params: Record<string, Float32Array> = {};
  readonly opset: number;
  private readonly shapes = new Map<string, Shape>();
  private readonly constants = new Map<string, ConstantTensor>();
  private readonly graphInputs = new Map<string, Shape>();
  private readonly dataInputs: string[] = [];
  /** ONNX names that are another blob under a second name (Identity). */
  private readonly aliases = new Map<string, string>();

  constructor(
    readonly model: ModelProto,
    readonly options: ImportOptions,
  ) {
    this.opset = model.opsetImport?.find((o) => !o.domain)?.version ?? 1;
    const graph = model.graph ?? this.refuse('the model has no graph');
    const source = options.source ?? 'ONNX model';
    for (const init of graph.initializer ?? []) this.constants.set(init.name!, tensorValues(init, source));
    for (const input of graph.input ?? []) {
      if (this.constants.has(input.name)) continue;
      const given = options.inputValues?.[input.name];
      const dims = input.type?.tensorType?.shape?.dim ?? [];
      if (!given && !input.type?.tensorType) this.refuse(`input '${input.name}' is not a tensor with a type`);
      const shape =
        given?.shape ??
        dims.map(
          (d, i) =>
            d.dimValue ??
            (i === 0 && options.batch
              ? options.batch
              : this.refuse(`input '${input.name}' has a symbolic dimension ${d.dimParam ?? i}; pass its size`)),
        );
      if (!shape.every((d) => Number.isSafeInteger(d) && d >= 1))
        this.refuse(`input '${input.name}' has the shape ${formatShape(shape)}; dimensions must be positive integers`);
      this.graphInputs.set(input.name, shape);
    }
  }

  refuse(reason: string): never {
    throw new UnsupportedOnnxError(`${this.options.source ?? 'ONNX model'}: ${reason}`);
  }

  /** The engine's blob for an ONNX value name. */
  blob(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  alias(name: string, target: string): void {
    this.aliases.set(name, this.blob(target));
  }

  /** A data blob (activation or net input) and its shape. */
  data(node: NodeProto, onnxName: string): Shape {
    const name = this.blob(onnxName);
    const shape = this.shapes.get(name);
    if (shape) return shape;
    const inputShape = this.graphInputs.get(name);
    if (inputShape) {
      this.dataInputs.push(name);
      this.shapes.set(name, inputShape);
      return inputShape;
    }
    if (this.constants.has(name)) this.refuse(`${node.opType} node '${node.name ?? ''}': constant '${name}' where the engine expects data`);
    return this.refuse(`${node.opType} node '${node.name ?? ''}': input '${name}' is not produced by any earlier node`);
  }

  constant(node: NodeProto, name: string): ConstantTensor {
    const known = this.constants.get(name);
    if (known) return known;
    if (this.graphInputs.has(name)) {
      const given = this.options.inputValues?.[name];
      if (!given) this.refuse(`graph input '${name}' feeds the weights of ${node.opType} node '${node.name ?? ''}'; pass its value`);
      this.constants.set(name, given);
      return given;
    }
    return this.refuse(`${node.opType} node '${node.name ?? ''}': '${name}' must be a constant (an initializer), but it is computed`);
  }

  isConstant(name: string): boolean {
    return this.constants.has(name) || (this.graphInputs.has(name) && !this.shapes.has(name) && !!this.options.inputValues?.[name]);
  }

  addConstant(name: string, value: ConstantTensor): void {
    this.constants.set(name, value);
  }

  addLayer(spec: LayerSpec, params: Record<string, Float32Array> = {}): void {
    spec.inputs = spec.inputs?.map((i) => this.blob(i));
    const inputShapes = (spec.inputs ?? []).map((i) => this.shapes.get(i)!);
    const layer = createLayer(spec, inputShapes);
    spec.outputs!.forEach((name, i) => this.shapes.set(name, layer.outputShapes[i]!));
    for (const [role, value] of Object.entries(params)) this.params[`${spec.name}.${role}`] = value;
    this.layers.push(spec);
  }

  finish(): ImportedModel {
    if (this.dataInputs.length === 0) this.refuse('no graph input carries data');
    const batch = this.graphInputs.get(this.dataInputs[0]!)![0] ?? this.refuse('inputs must have a batch dimension');
    const inputs: Record<string, number[]> = {};
    for (const name of this.dataInputs) {
      const shape = this.graphInputs.get(name)!;
      if (shape[0] !== batch)
        this.refuse(`inputs must share their first (batch) dimension: '${name}' is ${formatShape(shape)}, batch is ${batch}`);
      inputs[name] = shape.slice(1);
    }
    const outputs = (this.model.graph!.output ?? []).map((o) => this.blob(o.name));
    if (outputs.length === 0) this.refuse('the graph declares no outputs');
    for (const out of outputs) if (!this.shapes.has(out)) this.refuse(`graph output '${out}' is not computed by any node the engine runs`);
    const metadata = Object.fromEntries((this.model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    return { spec: { name: this.model.graph!.name ?? 'onnx', inputs, layers: this.layers }, batch, params: this.params, outputs, metadata };
  }
}

type Converter = (im: Importer, node: NodeProto, name: string) => void;

const pairOf = (values: number[], what: string, im: Importer): [number, number] =>
  values.length === 2 ? [values[0]!, values[1]!] : im.refuse(`${what}: only 2-d windows are supported, got ${JSON.stringify(values)}`);

/** Padding [top, left, bottom, right] from ONNX pads or auto_pad; SAME keeps ceil(in / stride) outputs. */
function padding(
  im: Importer,
  node: NodeProto,
  input: Shape,
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
): [number, number, number, number] {
  const a = attributes(node);
  const autoPad = a.string('auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const pads = a.ints('pads', [0, 0, 0, 0]);
    return pads.length === 4
      ? (pads as [number, number, number, number])
      : im.refuse(`${node.opType} '${node.name ?? ''}': pads ${JSON.stringify(pads)} is not 2-d`);
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  const [before, after] = [0, 1]
    .map((axis) => {
      const size = input[2 + axis]!;
      const total = Math.max(0, (Math.ceil(size / stride[axis]!) - 1) * stride[axis]! + (kernel[axis]! - 1) * dilation[axis]! + 1 - size);
      const small = Math.floor(total / 2);
      return autoPad === 'SAME_LOWER' ? [total - small, small] : [small, total - small];
    })
    .reduce<[number[], number[]]>(
      ([b, e], [x, y]) => [
        [...b, x!],
        [...e, y!],
      ],
      [[], []],
    );
  return [before[0]!, before[1]!, after[0]!, after[1]!];
}

function transpose(value: ConstantTensor, perm: number[]): ConstantTensor {
  const rank = value.shape.length;
  const outShape = perm.map((p) => value.shape[p]!);
  const inStrides = value.shape.map((_, i) => sizeOf(value.shape.slice(i + 1)));
  const out = new Float32Array(value.data.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let from = 0;
    for (let d = 0; d < rank; d++) from += index[d]! * inStrides[perm[d]!]!;
    out[o] = value.data[from]!;
    for (let d = rank - 1; d >= 0 && ++index[d]! === outShape[d]; d--) index[d] = 0;
  }
  return { shape: outShape, data: out };
}

const converters: Record<string, Converter> = {
  Conv(im, node, name) {
    const [x, w, b] = node.input!;
    const xShape = im.data(node, x!);
    const weight = im.constant(node, w!);
    if (weight.shape.length !== 4) im.refuse(`Conv '${name}': only 2-d convolution is supported (weight ${formatShape(weight.shape)})`);
    const a = attributes(node);
    const kernel: [number, number] = [weight.shape[2]!, weight.shape[3]!];
    if (a.has('kernel_shape') && a.ints('kernel_shape', []).join() !== kernel.join()) {
      im.refuse(
        `Conv '${name}': kernel_shape ${JSON.stringify(a.ints('kernel_shape', []))} does not match the weight ${formatShape(weight.shape)}`,
      );
    }
    const stride = pairOf(a.ints('strides', [1, 1]), `Conv '${name}' strides`, im);
    const dilation = pairOf(a.ints('dilations', [1, 1]), `Conv '${name}' dilations`, im);
    const params: Record<string, Float32Array> = { weight: weight.data };
    if (b) params.bias = im.constant(node, b).data;
    im.addLayer(
      {
        name,
        type: 'conv2d',
        inputs: [x!],
        outputs: [node.output![0]!],
        outChannels: weight.shape[0]!,
        kernel,
        stride,
        dilation,
        pad: padding(im, node, xShape, kernel, stride, dilation),
        groups: a.int('group', 1),
        bias: !!b,
      },
      params,
    );
  },
  MaxPool(im, node, name) {
    const x = node.input![0]!;
    const xShape = im.data(node, x);
    const a = attributes(node);
    const kernel = pairOf(a.ints('kernel_shape', []), `MaxPool '${name}' kernel_shape`, im);
    const stride = pairOf(a.ints('strides', [1, 1]), `MaxPool '${name}' strides`, im);
    const dilation = pairOf(a.ints('dilations', [1, 1]), `MaxPool '${name}' dilations`, im);
    im.addLayer({
      name,
      type: 'maxpool2d',
      inputs: [x],
      outputs: [node.output![0]!],
      kernel,
      stride,
      dilation,
      pad: padding(im, node, xShape, kernel, stride, dilation),
      ceil: a.int('ceil_mode', 0) === 1,
    });
  },
  LRN(im, node, name) {
    const a = attributes(node);
    const x = node.input![0]!;
    im.data(node, x);
    im.addLayer({
      name,
      type: 'lrn',
      inputs: [x],
      outputs: [node.output![0]!],
      size: a.int('size', 0),
      alpha: a.float('alpha', 1e-4),
      beta: a.float('beta', 0.75),
      k: a.float('bias', 1),
      alphaConvention: 'over-n',
    });
  },
  Relu: activation('relu'),
  Sigmoid: activation('sigmoid'),
  Tanh: activation('tanh'),
  Gemm(im, node, name) {
    const [A, B, C] = node.input!;
    const a = attributes(node);
    if (a.int('transA', 0))
      im.refuse(`Gemm '${name}': transA=1 transposes the activations, which no engine layer does (Linear computes x·Wᵀ + b)`);
    im.data(node, A!);
    const b = im.constant(node, B!);
    const alpha = a.float('alpha', 1),
      beta = a.float('beta', 1);
    const weight = a.int('transB', 0) ? b : transpose(b, [1, 0]);
    const outFeatures = weight.shape[0]!;
    const params: Record<string, Float32Array> = { weight: weight.data.map((v) => v * alpha) };
    if (C) {
      const c = im.constant(node, C);
      const perColumn = c.data.length === 1 || (c.data.length === outFeatures && sizeOf(c.shape.slice(0, -1)) === 1);
      if (!perColumn)
        im.refuse(`Gemm '${name}': C ${formatShape(c.shape)} is not one bias per output column; Linear's bias is per output feature`);
      params.bias = Float32Array.from({ length: outFeatures }, (_, j) => beta * c.data[c.data.length === 1 ? 0 : j]!);
    }
    im.addLayer({ name, type: 'linear', inputs: [A!], outputs: [node.output![0]!], outFeatures, bias: !!C }, params);
  },
  MatMul(im, node, name) {
    const [A, B] = node.input!;
    if (im.data(node, A!).length !== 2) im.refuse(`MatMul '${name}': only 2-d activations times a constant matrix are supported`);
    const b = im.constant(node, B!);
    if (b.shape.length !== 2) im.refuse(`MatMul '${name}': the constant operand must be 2-d, got ${formatShape(b.shape)}`);
    im.addLayer(
      { name, type: 'linear', inputs: [A!], outputs: [node.output![0]!], outFeatures: b.shape[1]!, bias: false },
      { weight: transpose(b, [1, 0]).data },
    );
  },
  Transpose(im, node, name) {
    const x = node.input![0]!;
    if (!im.isConstant(x)) im.refuse(`Transpose '${name}': only constant tensors (weights) can be transposed`);
    const value = im.constant(node, x);
    const perm = attributes(node).ints(
      'perm',
      value.shape.map((_, i) => value.shape.length - 1 - i),
    );
    im.addConstant(node.output![0]!, transpose(value, perm));
  },
  Identity(im, node) {
    const x = node.input![0]!;
    // PyTorch shares equal initialisers through Identity nodes: the output is then the same constant
    if (im.isConstant(x)) return im.addConstant(node.output![0]!, im.constant(node, x));
    im.data(node, x);
    im.alias(node.output![0]!, x);
  },
  Constant(im, node, name) {
    const a = (node.attribute ?? [])[0];
    if (!a) return im.refuse(`Constant '${name}': no value attribute`);
    const list = (data: number[]) => ({ shape: [data.length], data: Float32Array.from(data) });
    const scalar = (value: number) => ({ shape: [], data: Float32Array.of(value) });
    const values: Record<string, () => ConstantTensor> = {
      value: () => tensorValues(a.t ?? {}, im.options.source ?? 'ONNX model'),
      value_float: () => scalar(a.f ?? 0),
      value_floats: () => list(a.floats ?? []),
      value_int: () => scalar(a.i ?? 0),
      value_ints: () => list(a.ints ?? []),
    };
    const read = values[a.name] ?? im.refuse(`Constant '${name}': a ${a.name} value is not supported`);
    im.addConstant(node.output![0]!, read());
  },
  GlobalAveragePool(im, node, name) {
    const x = node.input![0]!;
    if (im.data(node, x).length !== 4) im.refuse(`GlobalAveragePool '${name}': only 4-d NCHW inputs are supported`);
    im.addLayer({ name, type: 'adaptive_avgpool2d', inputs: [x], outputs: [node.output![0]!], output: 1 });
  },
  /** PyTorch exports an adaptive average pool whose input size divides evenly as AveragePool with
   * kernel = stride and no padding: the engine's adaptive pool computes exactly that. */
  AveragePool(im, node, name) {
    const x = node.input![0]!;
    const [, , h, w] = im.data(node, x);
    const a = attributes(node);
    const kernel = pairOf(a.ints('kernel_shape', []), `AveragePool '${name}' kernel_shape`, im);
    const stride = pairOf(a.ints('strides', [1, 1]), `AveragePool '${name}' strides`, im);
    const padded = a.ints('pads', [0, 0, 0, 0]).some((p) => p !== 0) || !['NOTSET', 'VALID'].includes(a.string('auto_pad', 'NOTSET'));
    const tiles = kernel.join() === stride.join() && h! % kernel[0] === 0 && w! % kernel[1] === 0 && !a.int('ceil_mode', 0);
    if (padded || !tiles) {
      im.refuse(
        `AveragePool '${name}': only non-overlapping windows that tile the input without padding are supported ` +
          `(kernel ${kernel.join('×')}, strides ${stride.join('×')}, input ${h}×${w})`,
      );
    }
    im.addLayer({ name, type: 'adaptive_avgpool2d', inputs: [x], outputs: [node.output![0]!], output: [h! / kernel[0], w! / kernel[1]] });
  },
  /** A Reshape to [N, features] with a constant shape, as PyTorch flattens before a classifier
   * (before opset 5, the shape was an attribute: old Caffe conversions). */
  Reshape(im, node, name) {
    const [x, shapeName] = node.input!;
    const input = im.data(node, x!);
    const target = shapeName ? Array.from(im.constant(node, shapeName).data) : attributes(node).ints('shape', []);
    const features = sizeOf(input.slice(1));
    const flattens = target.length === 2 && [0, -1, input[0]].includes(target[0]!) && [-1, features].includes(target[1]!);
    if (!flattens) {
      im.refuse(
        `Reshape '${name}': only a reshape to [batch, features] is supported, got ${JSON.stringify(target)} for ${formatShape(input)}`,
      );
    }
    im.addLayer({ name, type: 'flatten', inputs: [x!], outputs: [node.output![0]!], axis: 1 });
  },
  Flatten(im, node, name) {
    const x = node.input![0]!;
    im.data(node, x);
    im.addLayer({ name, type: 'flatten', inputs: [x], outputs: [node.output![0]!], axis: attributes(node).int('axis', 1) });
  },
  Concat(im, node, name) {
    const inputs = node.input!;
    for (const i of inputs) im.data(node, i);
    im.addLayer({ name, type: 'concat', inputs, outputs: [node.output![0]!], axis: attributes(node).int('axis', 0) });
  },
  Dropout(im, node, name) {
    const [x, ratio, trainingMode] = node.input!;
    if (trainingMode && im.constant(node, trainingMode).data[0])
      im.refuse(`Dropout '${name}': training_mode=true draws random masks at inference`);
    const p = ratio ? im.constant(node, ratio).data[0]! : attributes(node).float('ratio', 0.5);
    im.data(node, x!);
    im.addLayer({ name, type: 'dropout', inputs: [x!], outputs: [node.output![0]!], p });
  },
  Softmax: softmax('softmax'),
  LogSoftmax: softmax('log_softmax'),
};

function activation(type: 'relu' | 'sigmoid' | 'tanh'): Converter {
  return (im, node, name) => {
    const x = node.input![0]!;
    im.data(node, x);
    im.addLayer({ name, type, inputs: [x], outputs: [node.output![0]!] });
  };
}

/** Before opset 13, ONNX's softmax normalised over all axes from `axis` (default 1) on. */
function softmax(type: 'softmax' | 'log_softmax'): Converter {
  return (im, node, name) => {
    const x = node.input![0]!;
    im.data(node, x);
    const modern = im.opset >= 13;
    im.addLayer({
      name,
      type,
      inputs: [x],
      outputs: [node.output![0]!],
      axis: attributes(node).int('axis', modern ? -1 : 1),
      over: modern ? 'axis' : 'trailing',
    });
  };
}

export const supportedOnnxOps = Object.keys(converters);

export function importOnnx(model: ModelProto, options: ImportOptions = {}): ImportedModel {
  const source = options.source ?? 'ONNX model';
  try {
    const im = new Importer(model, options);
    const nodes = fuseTorchLrn(model.graph!.node ?? [], model.graph!.initializer ?? [], source);
    const unsupported = nodes.flatMap((node, index) =>
      !converters[node.opType] || (node.domain && node.domain !== 'ai.onnx')
        ? [`${node.domain ? `${node.domain}.` : ''}${node.opType} '${node.name || `#${index}`}'`]
        : [],
    );
    if (unsupported.length > 0) im.refuse(`unsupported operators (supported: ${supportedOnnxOps.join(', ')}): ${unsupported.join(', ')}`);
    withoutUnreadOutputs(nodes, model.graph!.output ?? [], im).forEach((node, index) =>
      converters[node.opType]!(im, node, layerName(node, index)),
    );
    const imported = im.finish();
    planNet(imported.spec, imported.batch); // the whole net's shapes, checked before anyone builds it
    return imported;
  } catch (error) {
    if ((error as Error).message.startsWith(`${source}:`)) throw error;
    // a layer's own shape check (SpecError) or a reader's: named after the file
    throw new UnsupportedOnnxError(`${source}: ${(error as Error).message}`);
  }
}

/** The engine computes each node's first output only. A second one that nothing reads (Dropout's
 * mask, MaxPool's indices: Caffe2's exports, the ONNX zoo's bvlc_alexnet among them, name every
 * Dropout's mask) is dropped; one that a node or the graph reads is refused, naming the reader. */
function withoutUnreadOutputs(nodes: NodeProto[], graphOutputs: { name: string }[], im: Importer): NodeProto[] {
  const readers = new Map<string, string>();
  for (const [index, node] of nodes.entries())
    for (const input of node.input ?? []) if (input) readers.set(input, `${node.opType} node '${node.name || `#${index}`}'`);
  for (const output of graphOutputs) readers.set(output.name, 'the graph (one of its outputs)');
  return nodes.map((node, index) => {
    const [first, ...rest] = node.output ?? [];
    for (const [i, extra] of rest.entries()) {
      const reader = extra ? readers.get(extra) : undefined;
      if (reader)
        im.refuse(
          `${node.opType} node '${node.name || `#${index}`}': its output ${i + 2} '${extra}' is read by ${reader}; ` +
            `the engine computes a node's first output only`,
        );
    }
    return rest.length > 0 ? { ...node, output: [first!] } : node;
  });
}

/** A layer's name: its weight initialiser's prefix (`features.0` for `features.0.weight`), so the
 * imported parameters keep the file's own names; else the node's name. */
function layerName(node: NodeProto, index: number): string {
  const weight = (node.input ?? [])[1];
  if (weight?.endsWith('.weight') && ['Conv', 'Gemm', 'MatMul'].includes(node.opType)) return weight.slice(0, -'.weight'.length);
  return node.name || `${node.opType.toLowerCase()}_${index}`;
}
