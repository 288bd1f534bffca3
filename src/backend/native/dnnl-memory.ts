/**
 * oneDNN's memory as the convolutions see it: tensor descriptors, reorders between layouts (small
 * ones on one thread), and the blocked layouts (nChw8c, nChw16c) tensors are kept in between
 * layers, with their conversion to NCHW. dnnl.ts plans convolutions with these.
 */
import type { Koffi } from './ffi.js';
import {
  ARG,
  type bindLibrary,
  exec,
  F32,
  type Handle,
  MEMORY_DESC_BYTES,
  QUERY_IMPLEMENTATION,
  SERIAL_REORDER_BYTES,
  TAG_A,
  TAG_ABCD,
  TAG_ABCDE,
  TAG_ANY,
  TAG_BLOCKED,
  type ExecArg,
} from './dnnl-api.js';

/** A tensor held in one of oneDNN's blocked layouts (nChw8c with AVX2) in the bytes of its NCHW
 * buffer: what a convolution or max-pool wrote for the next one to read as it is (layouts.ts). */
export interface Layout {
  /** oneDNN's descriptor of it. */
  readonly md: unknown;
  /** Channels per block where it is oneDNN's nChw4c, nChw8c or nChw16c (read by our blocked max-pool). */
  readonly block?: number;
  /** Writes it as NCHW from one view (its buffer) to another. */
  toPlain(from: Float32Array, to: Float32Array): void;
}

export interface Reordering {
  primitive: Handle;
  args: ExecArg[];
  /** Run on the calling thread alone: waking OpenMP's sleeping threads costs more than they save. */
  serial: boolean;
}

export function memoryTools(koffi: Koffi, { api, gomp, check, out, engine, stream }: ReturnType<typeof bindLibrary>) {
  let threads = 1;
  /** A tensor's descriptor: as the engine holds it (NCHW, goihw, a vector), and as the primitive is
   * asked for it: in a layout it chooses ("any") or in `layout`. */
  const describe = (dims: number[], layout = TAG_ANY, plain = dims.length === 1 ? TAG_A : dims.length === 4 ? TAG_ABCD : TAG_ABCDE) => {
    const [user, op] = [new Uint8Array(MEMORY_DESC_BYTES), new Uint8Array(MEMORY_DESC_BYTES)];
    for (const [md, tag] of [
      [user, plain],
      [op, layout],
    ] as const)
      check('memory descriptor', api.describe(md, dims.length, BigInt64Array.from(dims, BigInt), F32, tag));
    return { user, op };
  };

  /** A layout oneDNN chose for a tensor of `dims`. */
  const layoutOf = (md: Handle, dims: number[]): Layout => {
    const user = describe(dims).user;
    const block = [8, 16, 4].find((b) => api.equal(md, describe(dims, TAG_BLOCKED[b]).op) === 1);
    const source = out('memory', (s) => api.memory(s, md, engine, 0));
    const target = out('memory', (s) => api.memory(s, user, engine, 0));
    const toPlain = reordering(md, user, source, target, Number(api.size(user)));
    return {
      md,
      block,
      toPlain(from, to) {
        check('memory', api.setHandle(source, Number(koffi.address(from))));
        check('memory', api.setHandle(target, Number(koffi.address(to))));
        runReorder(toPlain);
      },
    };
  };

  /** A reorder from descriptor `from` to `to`, between the memories `source` and `target`, of `bytes` of NCHW. */
  const reordering = (from: unknown, to: unknown, source: Handle, target: Handle, bytes: number): Reordering => {
    const pd = out('reorder', (s) => api.reorder(s, from, engine, to, engine, null));
    return {
      primitive: out('reorder', (s) => api.primitive(s, pd)),
      args: exec([ARG.FROM, source], [ARG.TO, target]),
      serial: bytes < SERIAL_REORDER_BYTES,
    };
  };
  const runReorder = (r: Reordering) => {
    if (r.serial) gomp(1);
    const status = api.execute(r.primitive, stream, 2, r.args);
    if (r.serial) gomp(threads);
    check('reorder', status);
  };

  const implementation = (pd: Handle): string => {
    const name: (string | null)[] = [null];
    check('query', api.implementation(pd, QUERY_IMPLEMENTATION, 0, name));
    return name[0] ?? '';
  };

  const blockedLayouts = new Map<string, Layout>();
  const blockedLayout = (dims: number[], block: number): Layout => {
    const key = `${dims.join('x')}/${block}`;
    if (!blockedLayouts.has(key)) {
      const md = new Uint8Array(MEMORY_DESC_BYTES);
      check('memory descriptor', api.describe(md, 4, BigInt64Array.from(dims, BigInt), F32, TAG_BLOCKED[block]));
      blockedLayouts.set(key, layoutOf(md, dims));
    }
    return blockedLayouts.get(key)!;
  };

  return {
    describe,
    reordering,
    runReorder,
    implementation,
    layoutOf,
    blockedLayout,
    /** OpenMP's threads for oneDNN's kernels (reorders under SERIAL_REORDER_BYTES take one). */
    setThreads(count: number) {
      threads = count;
      gomp(count);
    },
  };
}
