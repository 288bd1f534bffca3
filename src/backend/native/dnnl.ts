/**
 * Direct convolutions from oneDNN (Debian's `libdnnl2`, the library PyTorch's own CPU convolutions
 * come from), called through koffi on the wasm backend's memory: the engine's NCHW tensors are
 * reordered into the blocked layouts oneDNN's JIT kernels want inside the call, and a forward pass
 * leaves its output blocked for the next one (layouts.ts), with max-pooling on it here. No im2col:
 * its direct AVX2 kernels ran the torchvision net's conv2 at batch 64 in 163 ms against 251 for
 * im2col + OpenBLAS, the small Fashion-MNIST net's conv2 in 4.7 against 9.6 (2 threads). A large
 * fully-connected layer's forward pass runs here too, as a 1×1 convolution (`linear`).
 * oneDNN 2.x's C API only (3.x changed it); `ALEXNET_DNNL` names another library file, or is `off`.
 */
import {
  ARG,
  bindLibrary,
  CANDIDATES,
  CONVOLUTION_DESC_BYTES,
  DIRECT,
  DnnlError,
  exec,
  type ExecArg,
  FORWARD_TRAINING,
  type Handle,
  MEMORY_DESC_BYTES,
  QUERY_DIFF_DST,
  QUERY_DIFF_SRC,
  QUERY_DIFF_WEIGHTS,
  QUERY_DST,
  QUERY_SRC,
  QUERY_WEIGHTS,
  TAG_ACDB,
  TAG_ANY,
  UNIMPLEMENTED,
} from './dnnl-api.js';
import { type Layout, memoryTools, type Reordering } from './dnnl-memory.js';
import { type Koffi, type NativeLibrary, openLibrary } from './ffi.js';
import { defaultEnvironment, keepsLayouts, readEnvironment } from '../../config.js';
import { dnnlDeclines } from './policy.js';
import type { Conv2dGeometry, KernelTable, LinearParams } from '../kernels.js';

export type ConvolutionKind = 'forward' | 'backward_data' | 'backward_weights';

type ConvolutionRole = keyof (KernelTable['conv2d_forward']['buffers'] &
  KernelTable['conv2d_backward_data']['buffers'] &
  KernelTable['conv2d_backward_filter']['buffers']);

/** A tensor of the engine as oneDNN's calls see it (a wasm backend buffer): its byte offset into the
 * memory, a stamp that changes whenever its contents may have, and its layout where it is not NCHW. */
export interface Placed {
  offset: number;
  stamp: number;
  layout?: Layout;
  /** Where its layout was written, when a kernel that keeps layouts (ReLU) passed it on. */
  origin?: Placed;
  /** A kernel that cannot read oneDNN's layouts needed it (or what it passed on to) as NCHW: a
   * convolution writes it as NCHW from then on (the paper net's LRN after conv1 and conv2 would
   * convert 122 MB per batch of 64; training converts most activations for the backward pass). */
  readAsNchw?: boolean;
}

/** A convolution's tensors by role (the kernel table's names). */
export type ConvolutionBuffers = Partial<Record<ConvolutionRole, Placed>>;

export type { Layout } from './dnnl-memory.js';

export interface Dnnl {
  /** The library's path and version. */
  library: string;
  version: string;
  /** Its OpenMP threads. */
  setThreads(threads: number): void;
  /** Runs one convolution pass on the memory whose first byte `memory` views; false (nothing done)
   * where oneDNN has no kernel for the geometry, or one that measured slower than im2col + BLAS. While the weights' stamp is the one last seen,
   * their copy in oneDNN's layout is reused (at batch 1 re-blocking them every call was ~5 % of the
   * paper net's time). */
  convolution(kind: ConvolutionKind, g: Conv2dGeometry, buffers: ConvolutionBuffers, memory: Float32Array): boolean;
  /** A fully-connected layer's forward pass (y = x·Wᵀ + b) as a 1×1 convolution over a map of `batch` pixels (the
   * rows, NHWC), so its weights are blocked once, while unchanged, for oneDNN's 1×1 kernel; false where it has none. */
  linear(p: LinearParams, buffers: ConvolutionBuffers, memory: Float32Array): boolean;
  /** Whether that pass reads its input `x` in `layout` as it is (no reorder). */
  convolutionReads(kind: ConvolutionKind, g: Conv2dGeometry, withBias: boolean, layout: Layout): boolean;
  /** The layout a forward pass leaves its output in, where not NCHW (`keepsLayouts()`, an output not read as NCHW). */
  convolutionWrites(g: Conv2dGeometry, withBias: boolean): Layout | undefined;
  /** nChw`block`c for an NCHW tensor of `dims` (what a max-pool of a blocked tensor writes). */
  blockedLayout(dims: number[], block: number): Layout;
}

let cached: Dnnl | string | undefined;

/** oneDNN, or why there is none (koffi missing, no library, another major version). */
export function loadDnnl(): Dnnl | string {
  cached ??= open();
  return cached;
}

function open(): Dnnl | string {
  if (readEnvironment('ALEXNET_DNNL') === 'off') return 'oneDNN turned off (ALEXNET_DNNL=off)';
  // OpenMP's threads spin after each call on the cores the wasm threads need between convolutions
  // (as OpenBLAS's do, blas.ts); passive waiting gives them back (a value set by the user wins).
  defaultEnvironment('OMP_WAIT_POLICY', 'passive');
  const found = openLibrary('oneDNN', CANDIDATES, 'ALEXNET_DNNL', 'libdnnl2');
  if (typeof found === 'string') return found;
  try {
    return bind(found.koffi, found.lib, found.path);
  } catch (error) {
    return `${found.path} is not oneDNN 2.x (${(error as Error).message})`;
  }
}

function bind(koffi: Koffi, lib: NativeLibrary, path: string): Dnnl {
  const library = bindLibrary(koffi, lib);
  const { api, check, out, engine, stream, version } = library;
  const { describe, reordering, runReorder, implementation, blockedLayout, layoutOf, setThreads } = memoryTools(koffi, library);
  /** Per geometry and pass: its primitive, or null where oneDNN has none (it says `unimplemented`). */
  const plans = new Map<string, Plan | null>();
  const scratch = sharedScratch(koffi);

  /** One argument of a primitive: the engine's tensor, and the primitive's own copy when its
   * layout differs (reordered in before the primitive runs, or out after it). */
  const argument = (
    pd: Handle,
    query: number,
    user: Uint8Array,
    [buffer, role]: [ConvolutionRole, number],
    output: boolean,
    index = 0,
  ): Argument => {
    const wanted = api.queryMd(pd, query, index);
    const userMemory = out('memory', (s) => api.memory(s, user, engine, 0));
    if (api.equal(user, wanted)) return { buffer, role, userMemory, memory: userMemory, wanted, output, bytes: 0 };
    // The weights' copy is kept between calls and shared (`weightCopy`); the activations' copies
    // only live during a call, so they share one scratch area (set at each call).
    const kept = role === ARG.WEIGHTS;
    const memory = out('memory', (s) => api.memory(s, wanted, engine, 0));
    const bytes = kept ? 0 : Math.ceil(Number(api.size(wanted)) / 64) * 64;
    const [from, to] = output ? [wanted, user] : [user, wanted];
    const [source, target] = output ? [memory, userMemory] : [userMemory, memory];
    return {
      buffer,
      role,
      userMemory,
      memory,
      wanted,
      reorder: reordering(from, to, source, target, Number(api.size(user))),
      output,
      bytes,
      ...(kept ? { format: formatOf(wanted) } : {}),
    };
  };

  /** The layouts weights were wanted in, by index: the key of their copies. */
  const weightFormats: Handle[] = [];
  const formatOf = (md: Handle) => {
    const known = weightFormats.findIndex((f) => api.equal(f, md) === 1);
    return known >= 0 ? known : weightFormats.push(md) - 1;
  };
  /** The weights in the layout a primitive wants: one copy per weight buffer and layout, shared by every plan that reads them so
   * (a net's batch sizes, its strips), and reordered again only when the buffer's stamp has changed. A copy per plan made the
   * torchvision net's fc6 take another 151 MB for each batch size it ran at, never freed. */
  const weightCopies = new WeakMap<Placed, Map<number, { area: Uint8Array; address: number; stamp: number }>>();
  const weightCopy = (weight: Placed, a: Argument) => {
    let copies = weightCopies.get(weight);
    if (!copies) weightCopies.set(weight, (copies = new Map()));
    let copy = copies.get(a.format!);
    if (!copy) {
      const area = new Uint8Array(new ArrayBuffer(Number(api.size(a.wanted)) + 64));
      copy = { area, address: Math.ceil(Number(koffi.address(area)) / 64) * 64, stamp: NaN };
      copies.set(a.format!, copy);
    }
    return copy;
  };

  /** `rows`: the activations are NHWC (a linear layer's rows as pixels), and read and written as they are. */
  const plan = (kind: ConvolutionKind, g: Conv2dGeometry, withBias: boolean, rows: boolean): Plan => {
    const cg = g.inChannels / g.groups,
      kg = g.outChannels / g.groups;
    const src = [g.batch, g.inChannels, g.inHeight, g.inWidth],
      dst = [g.batch, g.outChannels, g.outHeight, g.outWidth];
    const weights = g.groups === 1 ? [g.outChannels, cg, g.kernelH, g.kernelW] : [g.groups, kg, cg, g.kernelH, g.kernelW];
    const padBottom = (g.outHeight - 1) * g.strideH + (g.kernelH - 1) * g.dilationH + 1 - g.inHeight - g.padTop,
      padRight = (g.outWidth - 1) * g.strideW + (g.kernelW - 1) * g.dilationW + 1 - g.inWidth - g.padLeft;
    const window = [
      BigInt64Array.of(BigInt(g.strideH), BigInt(g.strideW)),
      BigInt64Array.of(BigInt(g.dilationH - 1), BigInt(g.dilationW - 1)),
      BigInt64Array.of(BigInt(g.padTop), BigInt(g.padLeft)),
      BigInt64Array.of(BigInt(padBottom), BigInt(padRight)),
    ];
    // The weight gradient of a layer with one input channel per group: in oneDNN's blocked layout its channels are padded to 8
    // (the small net's conv1, batch 64: 5.1–5.9 ms); on NHWC tensors (its input's layout already) its direct kernel takes 1.3–1.5
    // (a C probe, 2 threads), 3.1–4.0 in the engine with the reorder of dy, against 6.2 on im2col + BLAS.
    const activations = rows || (kind === 'backward_weights' && cg === 1) ? TAG_ACDB : TAG_ANY;
    const user = rows ? TAG_ACDB : undefined;
    const [x, y, w] = [describe(src, activations, user), describe(dst, activations, user), describe(weights)];
    const b = describe([g.outChannels]).user;
    const bias = withBias ? b : null;
    const forwardDesc = new Uint8Array(CONVOLUTION_DESC_BYTES);
    check('convolution', api.forward(forwardDesc, FORWARD_TRAINING, DIRECT, x.op, w.op, bias, y.op, ...window));
    const forwardPd = out('convolution', (s) => api.primitiveDesc(s, forwardDesc, null, engine, null));
    let pd = forwardPd;
    if (kind !== 'forward') {
      const desc = new Uint8Array(CONVOLUTION_DESC_BYTES);
      if (kind === 'backward_data') check('convolution', api.backwardData(desc, DIRECT, x.op, w.op, y.op, ...window));
      else check('convolution', api.backwardWeights(desc, DIRECT, x.op, w.op, bias, y.op, ...window));
      pd = out('convolution', (s) => api.primitiveDesc(s, desc, null, engine, forwardPd));
    }
    const gemm = onGemm(pd);
    // oneDNN's reference kernels (a CPU its JIT does not cover) are slower than im2col + BLAS; its GEMM runs a linear layer no faster.
    if ((rows && gemm) || implementation(pd).startsWith('ref')) throw new DnnlError('convolution', UNIMPLEMENTED);
    if (kind === 'forward' && gemm) {
      const unpadded = framed(g, withBias, x.user, padBottom, padRight);
      if (unpadded) return unpadded;
    }
    // A layer with under 8 channels per group is here for oneDNN's direct kernel (policy.ts's `dnnlDeclines`); where it has none, im2col +
    // BLAS stays the measured choice.
    if (kind === 'backward_weights' && cg < 8 && gemm) throw new DnnlError('convolution', UNIMPLEMENTED);
    let args: Argument[];
    if (kind === 'forward') {
      args = [argument(pd, QUERY_SRC, x.user, ['x', ARG.SRC], false), argument(pd, QUERY_WEIGHTS, w.user, ['weight', ARG.WEIGHTS], false)];
      if (withBias) args.push(argument(pd, QUERY_WEIGHTS, b, ['bias', ARG.BIAS], false, 1));
      const output = argument(pd, QUERY_DST, y.user, ['y', ARG.DST], true);
      // It may stay in oneDNN's layout for the next layer where that takes no more bytes than NCHW.
      if (output.reorder && api.size(output.wanted) === api.size(y.user)) output.layout = layoutOf(output.wanted, dst);
      args.push(output);
    } else if (kind === 'backward_data') {
      args = [
        argument(pd, QUERY_DIFF_DST, y.user, ['dy', ARG.DIFF_DST], false),
        argument(pd, QUERY_WEIGHTS, w.user, ['weight', ARG.WEIGHTS], false),
        argument(pd, QUERY_DIFF_SRC, x.user, ['dx', ARG.DIFF_SRC], true),
      ];
    } else {
      args = [argument(pd, QUERY_SRC, x.user, ['x', ARG.SRC], false), argument(pd, QUERY_DIFF_DST, y.user, ['dy', ARG.DIFF_DST], false)];
      args.push(argument(pd, QUERY_DIFF_WEIGHTS, w.user, ['dweight', ARG.DIFF_WEIGHTS], true));
      if (withBias) args.push(argument(pd, QUERY_DIFF_WEIGHTS, b, ['dbias', ARG.DIFF_BIAS], true, 1));
    }
    return {
      primitive: out('convolution', (s) => api.primitive(s, pd)),
      onGemm: gemm,
      args,
      execArgs: exec(...args.map((a) => [a.role, a.memory] as const)),
      scratchBytes: args.reduce((n, a) => n + a.bytes, 0),
    };
  };
  const onGemm = (pd: Handle) => implementation(pd).includes('gemm');

  /** oneDNN 2.6's direct kernels refuse kernels wider than 7 with a stride and top or left padding
   * (the torchvision net's conv1, 11×11/4 padded by 2), leaving them to its GEMM: 115–127 ms at
   * batch 64 against 51–57 for the same layer unpadded (2 threads, a C probe). Such a layer runs
   * unpadded on a copy of its input inside a frame of zeros (a reorder per call: the input's size). */
  const framed = (g: Conv2dGeometry, withBias: boolean, user: Uint8Array, padBottom: number, padRight: number): Plan | undefined => {
    if ((g.padTop === 0 && g.padLeft === 0) || padBottom < 0 || padRight < 0) return undefined;
    const inHeight = g.inHeight + g.padTop + padBottom,
      inWidth = g.inWidth + g.padLeft + padRight;
    const p = plannedOrNull(() => plan('forward', { ...g, inHeight, inWidth, padTop: 0, padLeft: 0 }, withBias, false));
    if (!p || p.onGemm) return undefined;
    p.args.find((a) => a.buffer === 'x')!.pinned = true;
    const inside = new Uint8Array(MEMORY_DESC_BYTES);
    const [dims, at] = [
      [g.batch, g.inChannels, g.inHeight, g.inWidth],
      [0, 0, g.padTop, g.padLeft],
    ].map((v) => BigInt64Array.from(v, BigInt));
    check('memory descriptor', api.window(inside, describe([g.batch, g.inChannels, inHeight, inWidth]).user, dims, at));
    const source = out('memory', (s) => api.memory(s, user, engine, 0));
    const target = out('memory', (s) => api.memory(s, inside, engine, 0));
    p.frame = {
      shape: [g.inChannels, g.inHeight, g.inWidth, g.padTop, g.padLeft, padBottom, padRight].join(' '),
      bytes: 4 * g.batch * g.inChannels * inHeight * inWidth,
      source,
      target,
      reorder: reordering(user, inside, source, target, Number(api.size(user))),
    };
    return p;
  };

  /** The frames' memory, by the shape of an image in its frame: one area for every batch size (a batch's images are its first
   * ones), grown — zeroed — for a larger batch. Only the inside of a frame is ever written, so the border stays zero. A frame
   * per plan kept 0.6 MB per image of every batch size the torchvision net had run at (conv1), for the life of the process. */
  const frameAreas = new Map<string, { area: Uint8Array; address: number }>();
  const frameArea = (frame: Frame) => {
    let area = frameAreas.get(frame.shape);
    if (!area || area.area.length < frame.bytes + 64) {
      const bytes = new Uint8Array(new ArrayBuffer(frame.bytes + 64));
      frameAreas.set(frame.shape, (area = { area: bytes, address: Math.ceil(Number(koffi.address(bytes)) / 64) * 64 }));
    }
    return area.address;
  };

  const planned = (kind: ConvolutionKind, g: Conv2dGeometry, withBias: boolean, rows = false): Plan | null => {
    const key = `${kind} ${withBias} ${rows} ${JSON.stringify(g)}`;
    if (!plans.has(key)) plans.set(key, dnnlDeclines(kind, g) ? null : plannedOrNull(() => plan(kind, g, withBias, rows)));
    return plans.get(key)!;
  };

  /** Runs a plan on the memory whose first byte `memory` views. */
  const execute = (p: Plan, buffers: ConvolutionBuffers, memory: Float32Array) => {
    const base = Number(koffi.address(memory));
    let at = scratch.at(p.scratchBytes);
    const frame = p.frame && frameArea(p.frame);
    if (p.frame) {
      check('memory', api.setHandle(p.frame.source, base + buffers.x!.offset));
      check('memory', api.setHandle(p.frame.target, frame));
      runReorder(p.frame.reorder);
    }
    // In place: an input already in the layout the plan reads (layouts.ts passes no other), an output left in its layout.
    const keepBlocked = keepsLayouts();
    const inPlace = p.args.map((a) =>
      a.output ? keepBlocked && a.layout !== undefined && !buffers[a.buffer]!.readAsNchw : buffers[a.buffer]!.layout !== undefined,
    );
    p.args.forEach((a, i) => {
      const address = base + buffers[a.buffer]!.offset;
      check('memory', api.setHandle(a.userMemory, a.pinned ? frame : address));
      if (inPlace[i]) check('memory', api.setHandle(a.memory, address));
      else if (a.bytes > 0) {
        check('memory', api.setHandle(a.memory, at));
        at += a.bytes;
      } else if (a.format !== undefined) {
        const [copy, stamp] = [weightCopy(buffers.weight!, a), buffers.weight!.stamp];
        check('memory', api.setHandle(a.memory, copy.address));
        if (copy.stamp !== stamp) runReorder(a.reorder!);
        copy.stamp = stamp;
      }
    });
    for (const [i, a] of p.args.entries()) if (a.reorder && !a.output && !inPlace[i] && a.format === undefined) runReorder(a.reorder);
    check('convolution', api.execute(p.primitive, stream, p.args.length, p.execArgs));
    p.args.forEach((a, i) => {
      if (!a.output) return;
      if (a.reorder && !inPlace[i]) runReorder(a.reorder);
      buffers[a.buffer]!.layout = inPlace[i] ? a.layout : undefined;
    });
    check('stream', api.wait(stream));
  };

  return {
    library: path,
    version,
    setThreads,
    convolution(kind, g, buffers, memory) {
      const p = planned(kind, g, (kind === 'backward_weights' ? buffers.dbias : buffers.bias) !== undefined);
      if (p) execute(p, buffers, memory);
      return p !== null;
    },
    linear(l, buffers, memory) {
      const pixels = { batch: 1, inHeight: l.batch, inWidth: 1, outHeight: l.batch, outWidth: 1 };
      const window = { kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padTop: 0, padLeft: 0, dilationH: 1, dilationW: 1 };
      const g = { ...pixels, ...window, inChannels: l.inFeatures, outChannels: l.outFeatures, groups: 1 };
      const p = planned('forward', g, buffers.bias !== undefined, true);
      if (p) execute(p, buffers, memory);
      return p !== null;
    },
    convolutionReads(kind, g, withBias, layout) {
      const x = planned(kind, g, withBias)?.args.find((a) => a.buffer === 'x');
      return x !== undefined && !x.pinned && x.reorder !== undefined && api.equal(layout.md, x.wanted) === 1;
    },
    convolutionWrites(g, withBias) {
      return planned('forward', g, withBias)?.args.find((a) => a.output)?.layout;
    },
    blockedLayout,
  };
}

function plannedOrNull<P>(make: () => P): P | null {
  try {
    return make();
  } catch (error) {
    if (error instanceof DnnlError && error.status === UNIMPLEMENTED) return null;
    throw error;
  }
}

interface Argument {
  /** The kernel table's name of the tensor, and oneDNN's. */
  buffer: ConvolutionRole;
  role: number;
  /** The engine's tensor (its address set at each call). */
  userMemory: Handle;
  /** What the primitive reads or writes: the same, or its own layout's copy. */
  memory: Handle;
  /** The descriptor the primitive asked for. */
  wanted: Handle;
  /** Into its copy before the primitive runs, or out of it after. */
  reorder?: Reordering;
  output: boolean;
  /** Bytes of its copy in the shared scratch area, rounded up to 64 (0: no copy, or a kept one). */
  bytes: number;
  /** Weights in another layout: the index of that layout, the key of their shared copy (`weightCopy`). */
  format?: number;
  /** Its tensor is a frame (`framed`), not the engine's. */
  pinned?: boolean;
  /** An output that may stay in the primitive's layout, in its buffer. */
  layout?: Layout;
}

interface Plan {
  primitive: Handle;
  /** oneDNN chose its GEMM-based implementation (no direct kernel for the geometry). */
  onGemm: boolean;
  args: Argument[];
  execArgs: ExecArg[];
  /** Bytes of the shared scratch area its copies take. */
  scratchBytes: number;
  /** The input copied into a zeroed frame before the primitive runs (`framed`). */
  frame?: Frame;
}

interface Frame {
  /** An image's channels, height and width, and its padding in the frame: the key of its memory (`frameArea`). */
  shape: string;
  /** The batch's frames. */
  bytes: number;
  /** The engine's input, and the inside of the frame. */
  source: Handle;
  target: Handle;
  reorder: Reordering;
}

/** One grow-only area for the reordered copies of a call's activations: the 64-byte aligned address
 * of at least `bytes` (an ArrayBuffer's own store: outside V8's heap, it never moves). */
function sharedScratch(koffi: Koffi) {
  let area = new Uint8Array(new ArrayBuffer(0));
  return {
    at(bytes: number): number {
      if (area.length < bytes + 64) area = new Uint8Array(new ArrayBuffer(bytes + 64));
      const address = Number(koffi.address(area));
      return Math.ceil(address / 64) * 64;
    },
  };
}
