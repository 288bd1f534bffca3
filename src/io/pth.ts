/**
 * PyTorch's `.pth`/`.pt` files (`torch.save` since 1.6): a ZIP archive holding `<root>/data.pkl`, a
 * pickle of the saved object whose tensors refer to raw storages `<root>/data/<key>`.
 *
 * Unpickling can run any code a file names, so this is not Python's unpickler: it is a small
 * machine that knows only the opcodes a tensor state_dict uses (protocols 2–5) and only the
 * globals PyTorch writes for one (OrderedDict, tensor and parameter rebuilders, storage types).
 * Anything else — a pickled nn.Module, an arbitrary class, a function call — is refused, named.
 */
import { formatShape, sizeOf } from '../tensor.js';
import { bytesPerValue, decodeValues } from './dtypes.js';
import { readFileBytes } from './files.js';
import type { NamedTensor } from './safetensors.js';
import { ZipArchive } from './zip.js';

/** PyTorch's storage classes, by the element type of safetensors' naming. */
const STORAGES: Record<string, string> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

class Global {
  constructor(readonly name: string) {}
}
class Tuple {
  constructor(readonly items: unknown[]) {}
}
class Storage {
  constructor(
    readonly dtype: string,
    readonly key: string,
    readonly count: number,
  ) {}
}
class TensorRef {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly strides: number[],
  ) {}
}

/** The callables a state_dict's pickle may apply (REDUCE), each checking its arguments. */
const CALLABLES: Record<string, (args: unknown[], fail: (what: string) => never) => unknown> = {
  'collections OrderedDict': () => new Map(),
  'torch._utils _rebuild_tensor_v2': ([storage, offset, shape, strides], fail) => {
    if (!(storage instanceof Storage)) return fail('a tensor without a storage');
    return new TensorRef(storage, integer(offset, fail), integers(shape, fail), integers(strides, fail));
  },
  'torch._utils _rebuild_parameter': ([data], fail) => (data instanceof TensorRef ? data : fail('a parameter without a tensor')),
  'torch._utils _rebuild_parameter_with_state': ([data], fail) => (data instanceof TensorRef ? data : fail('a parameter without a tensor')),
};

/** Reads a `.pth` file's tensors: a state_dict, or a checkpoint dict holding one (under
 * `state_dict` or `model`). DataParallel's `module.` prefix is removed. */
export function readPth(path: string): Record<string, NamedTensor> {
  return parsePth(readFileBytes(path, 'PyTorch file'), path);
}

/** `readPth` of a file's bytes; `path` names it in errors. */
export function parsePth(bytes: Uint8Array, path: string): Record<string, NamedTensor> {
  const fail = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  if (!ZipArchive.recognise(bytes)) {
    return fail(
      bytes[0] === 0x80
        ? "PyTorch's legacy (pre-1.6, non-ZIP) format is not read: load it in PyTorch and torch.save it again, or convert it to .safetensors"
        : 'not a PyTorch file (a .pth/.pt is a ZIP archive)',
    );
  }
  const zip = new ZipArchive(bytes, path);
  const pickle = [...zip.entries.keys()].find((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (!pickle) return fail('no data.pkl in the archive (not a torch.save file)');
  const root = pickle.slice(0, -'data.pkl'.length);
  const byteOrder = zip.entries.has(`${root}byteorder`) ? new TextDecoder().decode(zip.read(`${root}byteorder`)) : 'little';
  if (byteOrder !== 'little') fail(`tensors saved ${byteOrder}-endian are not read`);
  const dict = stateDict(unpickle(zip.read(pickle), fail), fail);
  const tensors: Record<string, NamedTensor> = {};
  const storages = new Map<string, Uint8Array>();
  for (const [name, ref] of dict) {
    const key = `${root}data/${ref.storage.key}`;
    if (!storages.has(key)) {
      if (!zip.entries.has(key)) fail(`tensor '${name}': its storage ${ref.storage.key} is not in the archive`);
      storages.set(key, zip.read(key));
    }
    tensors[name.replace(/^module\./, '')] = tensorData(name, ref, storages.get(key)!, fail);
  }
  return tensors;
}

/** The name → tensor map of the unpickled object. */
function stateDict(value: unknown, fail: (what: string) => never): Map<string, TensorRef> {
  if (!(value instanceof Map)) return fail('holds no state_dict: its object is not a dict');
  const nested = ['state_dict', 'model', 'model_state_dict'].map((k) => value.get(k)).find((v) => v instanceof Map) as Map<
    unknown,
    unknown
  >;
  const dict = (nested ?? value) as Map<unknown, unknown>;
  const tensors = new Map<string, TensorRef>();
  for (const [name, tensor] of dict) {
    if (typeof name !== 'string') return fail(`holds no state_dict: a key ${String(name)} is not a name`);
    if (tensor instanceof TensorRef) tensors.set(name, tensor);
  }
  if (tensors.size === 0) fail('holds no tensors (a state_dict, or a dict with one under state_dict or model, was expected)');
  return tensors;
}

/** A tensor's values, strides honoured, checked to lie within its storage. */
function tensorData(name: string, ref: TensorRef, bytes: Uint8Array, fail: (what: string) => never): NamedTensor {
  const { storage, offset, shape, strides } = ref;
  const width = bytesPerValue(storage.dtype);
  if (bytes.length !== storage.count * width)
    fail(
      `tensor '${name}': its storage holds ${bytes.length} bytes, ${storage.count} ${storage.dtype} values need ${storage.count * width}`,
    );
  if (strides.length !== shape.length) fail(`tensor '${name}' ${formatShape(shape)} has ${strides.length} strides`);
  const count = sizeOf(shape);
  const last = offset + shape.reduce((sum, n, i) => sum + (n - 1) * strides[i]!, 0);
  if (count > 0 && (offset < 0 || last >= storage.count))
    fail(`tensor '${name}' ${formatShape(shape)} reaches value ${last} of a storage of ${storage.count}`);
  const contiguous = strides.every((s, i) => s === shape.slice(i + 1).reduce((a, b) => a * b, 1));
  if (contiguous) return { shape, data: decodeValues(bytes, storage.dtype, count, offset * width) };
  const values = decodeValues(bytes, storage.dtype, storage.count);
  const data = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < count; i++) {
    data[i] = values[offset + index.reduce((sum, at, d) => sum + at * strides[d]!, 0)]!;
    for (let d = shape.length - 1; d >= 0 && ++index[d]! === shape[d]; d--) index[d] = 0;
  }
  return { shape, data };
}

function integer(value: unknown, fail: (what: string) => never): number {
  return Number.isSafeInteger(value) ? (value as number) : fail(`${String(value)} where an integer was expected`);
}

function integers(value: unknown, fail: (what: string) => never): number[] {
  if (!(value instanceof Tuple)) return fail('a tensor shape or stride that is not a tuple');
  return value.items.map((v) => integer(v, fail));
}

/**
 * The restricted unpickler. Opcodes are Python's (Lib/pickletools.py); only those that build
 * plain values, tuples, lists and dicts, look up the allowed globals, apply them, and resolve
 * PyTorch's persistent storage ids are known.
 */
export function unpickle(bytes: Uint8Array, fail: (what: string) => never): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { fatal: true });
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) fail('data.pkl ends in the middle of an opcode (truncated)');
    const start = at;
    at += n;
    return start;
  };
  const u8 = () => bytes[need(1)]!;
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const string = (length: number) => text.decode(bytes.subarray(need(length), at));
  const line = () => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) fail('data.pkl ends in the middle of an opcode (truncated)');
    return string(end - at + 1).slice(0, -1);
  };
  const pop = () => (stack.length > 0 ? stack.pop() : fail('data.pkl pops an empty stack (damaged)'));
  const top = () => (stack.length > 0 ? stack[stack.length - 1] : fail('data.pkl reads an empty stack (damaged)'));
  const popMark = () => {
    const items = stack;
    stack = marks.pop() ?? fail('data.pkl closes a mark it never opened (damaged)');
    return items;
  };
  const global = (name: string) => {
    const storage = /^torch (\w+Storage)$/.exec(name)?.[1];
    if (storage !== undefined && STORAGES[storage]) return new Global(name);
    if (CALLABLES[name]) return new Global(name);
    return fail(
      `data.pkl names ${name.replace(' ', '.')}, which a tensor state_dict does not use; refused, since unpickling it could run code ` +
        '(if this is a whole pickled model, save its model.state_dict() instead)',
    );
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail('data.pkl sets items on something that is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  for (;;) {
    const offset = at;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('data.pkl uses a pickle protocol above 5');
        break;
      case 0x95: // FRAME
        need(8);
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(op === 0x88);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x8a: {
        // LONG1: a little-endian two's-complement integer of n bytes
        const n = u8(),
          start = need(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[start + i]!);
        if (n > 0 && bytes[start + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
        stack.push(Number(value));
        break;
      }
      case 0x47: // BINFLOAT
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(string(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(string(u8()));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new Tuple([]));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        if (stack.length < n) fail('data.pkl builds a tuple from an empty stack (damaged)');
        stack.push(new Tuple(stack.splice(stack.length - n, n)));
        break;
      }
      case 0x74: {
        // TUPLE (popMark first: it replaces the stack)
        const items = popMark();
        stack.push(new Tuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: {
        // APPEND
        const value = pop();
        (top() as unknown[]).push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail('data.pkl appends to something that is not a list');
        (list as unknown[]).push(...items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x73: {
        // SETITEM
        const value = pop(),
          key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) fail(`data.pkl refers to memo ${key}, never stored (damaged)`);
        stack.push(memo.get(key));
        break;
      }
      case 0x63: // GLOBAL "module\nname\n"
        stack.push(global(`${line()} ${line()}`));
        break;
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(),
          module = pop();
        stack.push(global(`${String(module)} ${String(name)}`));
        break;
      }
      case 0x52: {
        // REDUCE: apply an allowed callable
        const args = pop(),
          callable = pop();
        if (!(callable instanceof Global) || !CALLABLES[callable.name] || !(args instanceof Tuple))
          fail(`data.pkl calls ${callable instanceof Global ? callable.name.replace(' ', '.') : 'something'} at byte ${offset}: refused`);
        stack.push(CALLABLES[(callable as Global).name]!((args as Tuple).items, fail));
        break;
      }
      case 0x51: {
        // BINPERSID: PyTorch's ('storage', StorageType, key, location, count)
        const pid = pop();
        const [kind, type, key, , count] = pid instanceof Tuple ? pid.items : [];
        const dtype = type instanceof Global ? STORAGES[type.name.split(' ')[1]!] : undefined;
        if (kind !== 'storage' || dtype === undefined || typeof key !== 'string')
          fail(`data.pkl refers to a persistent object that is not a tensor storage, at byte ${offset}`);
        stack.push(new Storage(dtype!, key as string, integer(count, fail)));
        break;
      }
      case 0x62: {
        // BUILD: an OrderedDict's attributes (its _metadata), which a state_dict may carry; ignored
        const state = pop();
        if (!(top() instanceof Map) || !(state instanceof Map || state === null))
          fail(`data.pkl builds an object at byte ${offset}: refused`);
        break;
      }
      default:
        fail(
          `data.pkl uses pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${offset}, which a tensor state_dict does not; refused`,
        );
    }
  }
}
