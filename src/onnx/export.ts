/**
 * ONNX export of a net's inference graph (opset 13): every layer as the ONNX operator of the same
 * meaning, parameters as float32 initializers. Loss layers and the inputs only they read (labels)
 * are left out: the exported graph ends at the logits. Dropout is the identity at inference.
 */
import type { Layer } from '../layers/layer.js';
import type { Net } from '../net/net.js';
import type { Conv2d } from '../layers/conv.js';
import type { LocalResponseNorm } from '../layers/lrn.js';
import type { MaxPool2d } from '../layers/pool.js';
import type { Softmax } from '../layers/softmax.js';
import type { Shape } from '../tensor.js';
import { DataType, encodeModel, type NodeProto, type TensorProto } from './proto.js';

const OPSET = 13;

const ints = (name: string, values: number[]) => ({ name, type: 7, ints: values });
const int = (name: string, value: number) => ({ name, type: 2, i: value });
const float = (name: string, value: number) => ({ name, type: 1, f: value });

function valueInfo(name: string, shape: Shape) {
  return { name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
}

function tensor(name: string, shape: Shape, data: ArrayLike<number>): TensorProto {
  return { name, dims: [...shape], dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from(data).buffer) };
}

/** ONNX nodes for one layer, or null for a layer that has no place in the inference graph. */
function nodesFor(layer: Layer, inputs: string[], outputs: string[], constants: TensorProto[]): NodeProto[] | null {
  const name = layer.name;
  const node = (opType: string, attribute: NodeProto['attribute'] = [], input = inputs, output = outputs): NodeProto => ({
    name,
    opType,
    input,
    output,
    attribute,
  });
  const spec = layer.spec;
  switch (spec.type) {
    case 'conv2d': {
      const { geometry: g, pads } = layer as Conv2d;
      const params = (layer as Conv2d).hasBias ? [`${name}.weight`, `${name}.bias`] : [`${name}.weight`];
      return [
        node(
          'Conv',
          [
            ints('kernel_shape', [g.kernelH, g.kernelW]),
            ints('strides', [g.strideH, g.strideW]),
            ints('dilations', [g.dilationH, g.dilationW]),
            ints('pads', pads),
            int('group', g.groups),
          ],
          [...inputs, ...params],
        ),
      ];
    }
    case 'maxpool2d': {
      const { geometry: g, pads } = layer as MaxPool2d;
      return [
        node('MaxPool', [
          ints('kernel_shape', [g.kernelH, g.kernelW]),
          ints('strides', [g.strideH, g.strideW]),
          ints('dilations', [g.dilationH, g.dilationW]),
          ints('pads', pads),
          int('ceil_mode', spec.ceil ? 1 : 0),
        ]),
      ];
    }
    case 'lrn': {
      const p = (layer as LocalResponseNorm).params;
      // ONNX's alpha is divided by size; ours is already the factor of the window sum.
      return [node('LRN', [int('size', p.size), float('alpha', p.alpha * p.size), float('beta', p.beta), float('bias', p.k)])];
    }
    case 'relu':
      return [node('Relu')];
    case 'tanh':
      return [node('Tanh')];
    case 'sigmoid':
      return [node('Sigmoid')];
    case 'dropout':
      constants.push(tensor(`${name}.ratio`, [], [spec.p]));
      return [node('Dropout', [], [...inputs, `${name}.ratio`])];
    case 'linear': {
      const flat = layer.inputShapes[0]!.length > 2 ? `${name}.flat` : inputs[0]!;
      const params = spec.bias === false ? [`${name}.weight`] : [`${name}.weight`, `${name}.bias`];
      const gemm = node('Gemm', [int('transB', 1)], [flat, ...params]);
      return flat === inputs[0] ? [gemm] : [{ ...node('Flatten', [int('axis', 1)], inputs, [flat]), name: `${name}.flatten` }, gemm];
    }
    case 'flatten':
      return [node('Flatten', [int('axis', spec.axis ?? 1)])];
    case 'concat':
      return [node('Concat', [int('axis', spec.axis ?? 1)])];
    case 'split': {
      constants.push({ name: `${name}.sizes`, dims: [spec.sizes.length], dataType: DataType.INT64, int64Data: spec.sizes });
      return [node('Split', [int('axis', spec.axis ?? 1)], [...inputs, `${name}.sizes`])];
    }
    case 'softmax':
    case 'log_softmax': {
      const p = (layer as Softmax).params;
      if (p.inner !== 1 && spec.over === 'trailing') throw new Error(`${name}: a softmax over trailing axes has no opset-13 ONNX form`);
      return [node(spec.type === 'softmax' ? 'Softmax' : 'LogSoftmax', [int('axis', spec.axis ?? 1)])];
    }
    case 'adaptive_avgpool2d': {
      const [, , h, w] = layer.inputShapes[0]!;
      const [, , oh, ow] = layer.outputShapes[0]!;
      if (h === oh && w === ow) return [node('Identity')];
      if (h! % oh! !== 0 || w! % ow! !== 0)
        throw new Error(`${name}: adaptive pooling ${h}×${w} → ${oh}×${ow} has no fixed-window ONNX form`);
      return [node('AveragePool', [ints('kernel_shape', [h! / oh!, w! / ow!]), ints('strides', [h! / oh!, w! / ow!])])];
    }
    case 'softmax_cross_entropy':
      return null;
  }
}

/** Serialises the net's inference graph and current parameters as an ONNX model; `metadata`
 * goes to its metadata_props (we record preprocessing and class names there). */
export async function exportOnnx(net: Net, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const nodes: NodeProto[] = [];
  const constants: TensorProto[] = [];
  const used = new Set<string>();
  const produced: string[] = [];
  for (const layer of net.layers) {
    const outputs = net.layerOutputs(layer.name);
    const made = nodesFor(layer, net.layerInputs(layer.name), outputs, constants);
    if (!made) continue;
    nodes.push(...made);
    for (const n of made) for (const i of n.input ?? []) used.add(i);
    produced.push(...outputs);
  }
  const params = await net.readParams();
  const initializers = [...net.params.map((p) => tensor(p.name, p.shape, params[p.name]!)), ...constants];
  const consumed = new Set(nodes.flatMap((n) => n.input ?? []));
  const graphOutputs = produced.filter((o) => !consumed.has(o));
  return encodeModel({
    irVersion: 8,
    producerName: 'alexnet-ts',
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: net.spec.name ?? 'net',
      node: nodes,
      initializer: initializers,
      input: net.inputNames.filter((i) => used.has(i)).map((i) => valueInfo(i, net.shapeOf(i))),
      output: graphOutputs.map((o) => valueInfo(o, net.shapeOf(o))),
    },
  });
}
