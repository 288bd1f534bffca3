/**
 * Graph rewrites for what exporters decompose. `torch.onnx.export` writes nn.LocalResponseNorm not
 * as ONNX's LRN but as some 15–40 nodes: x·x, unsqueezed to 5-D, padded along the channels, a
 * [size, 1, 1] AveragePool, squeezed back (behind an `If` at opset ≥ 11), then x / (k + α·avg)^β.
 * That is ONNX's LRN exactly (α/size times the window's sum), so the region becomes one LRN node.
 */
import type { NodeProto, TensorProto } from './proto.js';
import { tensorValues } from './proto.js';

interface Graph {
  nodes: NodeProto[];
  initializers: Map<string, TensorProto>;
  producers: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
}

/** The nodes with each PyTorch LRN decomposition replaced by one LRN node (at the position of its
 * final Div, named as it). Anything that does not match the pattern exactly is left alone. */
export function fuseTorchLrn(nodes: NodeProto[], initializers: TensorProto[], source: string): NodeProto[] {
  const graph: Graph = {
    nodes,
    initializers: new Map(initializers.map((t) => [t.name ?? '', t])),
    producers: new Map(),
    consumers: new Map(),
  };
  for (const node of nodes) {
    for (const output of node.output ?? []) graph.producers.set(output, node);
    for (const input of node.input ?? []) graph.consumers.set(input, [...(graph.consumers.get(input) ?? []), node]);
  }
  const replaced = new Map<NodeProto, NodeProto | null>();
  for (const square of nodes) {
    if (square.opType !== 'Mul' || square.input?.length !== 2 || square.input[0] !== square.input[1]) continue;
    const fused = matchLrn(graph, square, source);
    if (!fused) continue;
    for (const node of fused.region) replaced.set(node, null);
    replaced.set(fused.div, fused.lrn);
  }
  return nodes.flatMap((node) => (replaced.has(node) ? (replaced.get(node) ? [replaced.get(node)!] : []) : [node]));
}

function matchLrn(graph: Graph, square: NodeProto, source: string) {
  const x = square.input![0]!;
  const region = new Set<NodeProto>([square]);
  let div: NodeProto | undefined;
  const queue = [...square.output!];
  while (queue.length > 0) {
    for (const consumer of graph.consumers.get(queue.shift()!) ?? []) {
      if (region.has(consumer)) continue;
      region.add(consumer);
      if (consumer.opType === 'Div' && consumer.input?.[0] === x) div = consumer;
      else queue.push(...(consumer.output ?? []));
    }
    if (region.size > 64) return undefined;
  }
  if (!div) return undefined;
  const chain = powChain(graph, div.input![1]!, source);
  const pool = [...region].find((n) => n.opType === 'AveragePool');
  const kernel = pool?.attribute?.find((a) => a.name === 'kernel_shape')?.ints?.map(Number);
  if (!chain || !kernel || kernel.length !== 3 || kernel[1] !== 1 || kernel[2] !== 1 || kernel[0]! % 2 === 0) return undefined;
  // the constant computations that only the region reads (shapes, pads, α, k, β) go with it
  const constant = constantNodes(graph);
  for (let grew = true; grew;) {
    grew = false;
    for (const node of constant) {
      const readers = (node.output ?? []).flatMap((o) => graph.consumers.get(o) ?? []);
      if (region.has(node) || readers.length === 0 || !readers.every((r) => region.has(r))) continue;
      region.add(node);
      grew = true;
    }
  }
  // nothing but the Div's output may leave the region
  for (const node of region)
    for (const output of node.output ?? [])
      if (node !== div && (graph.consumers.get(output) ?? []).some((r) => !region.has(r))) return undefined;
  region.delete(div);
  const { alpha, k, beta } = chain;
  const lrn: NodeProto = {
    name: div.name ?? '',
    opType: 'LRN',
    input: [x],
    output: [div.output![0]!],
    attribute: [
      { name: 'size', type: 2, i: kernel[0]! },
      { name: 'alpha', type: 1, f: alpha },
      { name: 'beta', type: 1, f: beta },
      { name: 'bias', type: 1, f: k },
    ],
  };
  return { region, div, lrn };
}

/** Nodes computed from initializers, constants and tensor shapes alone (static here: the engine
 * plans every shape), in graph order, which ONNX makes topological. */
function constantNodes(graph: Graph): Set<NodeProto> {
  const constant = new Set<NodeProto>();
  const known = (input: string) => input === '' || graph.initializers.has(input) || constant.has(graph.producers.get(input)!);
  for (const node of graph.nodes) if (node.opType === 'Shape' || (node.input ?? []).every(known)) constant.add(node);
  return constant;
}

/** (k + α·avg)^β: the Pow, Add and Mul with their scalar constants, or undefined. α multiplies the
 * window's average, as ONNX's α/size multiplies its sum: the same α. */
function powChain(graph: Graph, blob: string, source: string) {
  const pow = graph.producers.get(blob);
  if (pow?.opType !== 'Pow') return undefined;
  const beta = scalar(graph, pow.input![1]!, source);
  const add = graph.producers.get(pow.input![0]!);
  if (add?.opType !== 'Add' || beta === undefined) return undefined;
  const [addData, k] = withScalar(graph, add, source);
  const mul = addData ? graph.producers.get(addData) : undefined;
  if (mul?.opType !== 'Mul' || k === undefined) return undefined;
  const [, alpha] = withScalar(graph, mul, source);
  return alpha === undefined ? undefined : { alpha, k, beta };
}

/** A binary node's non-constant input and its scalar constant operand, in either order. */
function withScalar(graph: Graph, node: NodeProto, source: string): [string | undefined, number | undefined] {
  const [a, b] = node.input ?? [];
  const sb = scalar(graph, b!, source);
  if (sb !== undefined) return [a, sb];
  return [b, scalar(graph, a!, source)];
}

/** A one-value constant (a Constant node's or an initializer's). */
function scalar(graph: Graph, name: string, source: string): number | undefined {
  const producer = graph.producers.get(name);
  const tensor = producer?.opType === 'Constant' ? producer.attribute?.find((a) => a.name === 'value')?.t : graph.initializers.get(name);
  if (!tensor) return undefined;
  const { data } = tensorValues(tensor, source);
  return data.length === 1 ? data[0] : undefined;
}
