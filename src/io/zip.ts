/**
 * Reading ZIP archives (PKWARE's APPNOTE): the central directory, ZIP64 included, and entries
 * stored or deflated. PyTorch's `torch.save` writes a ZIP of stored entries; a file that another
 * tool re-packed may deflate them. Everything is checked against the archive's length, so a
 * truncated file is named as such rather than read past its end.
 */
import { inflateSync } from 'fflate';

export interface ZipEntry {
  name: string;
  /** 0: stored, 8: deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Where the entry's local header starts. */
  headerOffset: number;
}

const END_OF_DIRECTORY = 0x06054b50,
  ZIP64_LOCATOR = 0x07064b50,
  ZIP64_END = 0x06064b50,
  DIRECTORY_ENTRY = 0x02014b50,
  LOCAL_HEADER = 0x04034b50;

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readDirectory();
  }

  /** Whether the bytes begin as a ZIP archive does (a local header, or an empty archive). */
  static recognise(bytes: Uint8Array): boolean {
    return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
  }

  /** An entry's uncompressed bytes. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) return this.fail(`no entry '${name}'`);
    const at = entry.headerOffset;
    this.need(at, 30, `the local header of '${name}'`);
    if (this.view.getUint32(at, true) !== LOCAL_HEADER) this.fail(`the local header of '${name}' is damaged`);
    const start = at + 30 + this.view.getUint16(at + 26, true) + this.view.getUint16(at + 28, true);
    this.need(start, entry.compressedSize, `the data of '${name}'`);
    const data = this.bytes.subarray(start, start + entry.compressedSize);
    if (entry.method === 0) return data;
    if (entry.method !== 8)
      return this.fail(`entry '${name}' is compressed with method ${entry.method}; only stored and deflated are read`);
    let inflated: Uint8Array;
    try {
      inflated = inflateSync(data);
    } catch (error) {
      return this.fail(`entry '${name}' does not inflate: ${(error as Error).message}`);
    }
    if (inflated.length !== entry.size) this.fail(`entry '${name}' inflates to ${inflated.length} bytes, not ${entry.size}`);
    return inflated;
  }

  private readDirectory(): void {
    const end = this.findEndOfDirectory();
    let count = this.view.getUint16(end + 10, true);
    let size = this.view.getUint32(end + 12, true);
    let offset = this.view.getUint32(end + 16, true);
    if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) ({ count, size, offset } = this.zip64End(end));
    this.need(offset, size, 'the central directory');
    let at = offset;
    for (let i = 0; i < count; i++) {
      this.need(at, 46, 'the central directory');
      if (this.view.getUint32(at, true) !== DIRECTORY_ENTRY) this.fail(`central directory entry ${i} is damaged`);
      const nameLength = this.view.getUint16(at + 28, true),
        extraLength = this.view.getUint16(at + 30, true),
        commentLength = this.view.getUint16(at + 32, true);
      this.need(at + 46, nameLength + extraLength, 'the central directory');
      const name = new TextDecoder().decode(this.bytes.subarray(at + 46, at + 46 + nameLength));
      const entry: ZipEntry = {
        name,
        method: this.view.getUint16(at + 10, true),
        compressedSize: this.view.getUint32(at + 20, true),
        size: this.view.getUint32(at + 24, true),
        headerOffset: this.view.getUint32(at + 42, true),
      };
      this.applyZip64Extra(entry, at + 46 + nameLength, extraLength);
      this.entries.set(name, entry);
      at += 46 + nameLength + extraLength + commentLength;
    }
  }

  /** The end-of-central-directory record: the last 22 bytes, unless a comment (≤ 64 KiB) follows. */
  private findEndOfDirectory(): number {
    const last = this.bytes.length - 22;
    for (let at = last; at >= Math.max(0, last - 0xffff); at--) {
      if (this.view.getUint32(at, true) === END_OF_DIRECTORY) return at;
    }
    return this.fail('no ZIP directory at its end (truncated, or not a ZIP archive)');
  }

  private zip64End(end: number): { count: number; size: number; offset: number } {
    const locator = end - 20;
    if (locator < 0 || this.view.getUint32(locator, true) !== ZIP64_LOCATOR) this.fail('a ZIP64 archive without its locator');
    const at = this.safe(this.view.getBigUint64(locator + 8, true), 'the ZIP64 directory offset');
    this.need(at, 56, 'the ZIP64 end of directory');
    if (this.view.getUint32(at, true) !== ZIP64_END) this.fail('the ZIP64 end of directory is damaged');
    return {
      count: this.safe(this.view.getBigUint64(at + 32, true), 'the entry count'),
      size: this.safe(this.view.getBigUint64(at + 40, true), 'the directory size'),
      offset: this.safe(this.view.getBigUint64(at + 48, true), 'the directory offset'),
    };
  }

  /** ZIP64's extra field (id 1) holds, in this order, whichever of the sizes and offset overflowed. */
  private applyZip64Extra(entry: ZipEntry, start: number, length: number): void {
    for (let at = start; at + 4 <= start + length;) {
      const id = this.view.getUint16(at, true),
        size = this.view.getUint16(at + 2, true);
      if (id === 1) {
        let field = at + 4;
        const next = (what: string) => {
          if (field + 8 > at + 4 + size) this.fail(`entry '${entry.name}': a short ZIP64 field`);
          const value = this.safe(this.view.getBigUint64(field, true), what);
          field += 8;
          return value;
        };
        if (entry.size === 0xffffffff) entry.size = next('a size');
        if (entry.compressedSize === 0xffffffff) entry.compressedSize = next('a size');
        if (entry.headerOffset === 0xffffffff) entry.headerOffset = next('an offset');
      }
      at += 4 + size;
    }
  }

  private safe(value: bigint, what: string): number {
    if (value > BigInt(this.bytes.length)) this.fail(`${what} (${value}) is beyond the file's ${this.bytes.length} bytes`);
    return Number(value);
  }

  private need(at: number, length: number, what: string): void {
    if (at + length > this.bytes.length) this.fail(`${what} ends past the file's ${this.bytes.length} bytes (truncated?)`);
  }

  private fail(what: string): never {
    throw new Error(`${this.source}: ${what}`);
  }
}
