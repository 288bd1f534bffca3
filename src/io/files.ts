/**
 * Reading files with errors that name them, and atomic file writes: the bytes go to a temporary file beside the target, are flushed to disk, and
 * the temporary file is renamed over the target, so a reader (or a run resumed after a crash) sees
 * the old file or the new one, never half of one. A process killed mid-write leaves only a
 * `NAME.tmp-PID` file, which `removeStaleTemporaries` clears.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readEnvironment } from '../config.js';

const TEMPORARY = /\.tmp-(\d+)$/;

/** Fault injection for tests: `ALEXNET_FAULT_KILL_IN_WRITE=n` SIGKILLs the process half-way
 * through its n-th atomic write (counting from 1), as a power cut or an OOM kill would. */
const killInWrite = Number(readEnvironment('ALEXNET_FAULT_KILL_IN_WRITE') ?? 0);
let writes = 0;

export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  const temporary = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(temporary, 'w');
  } catch (error) {
    throw new Error(`cannot write ${path}: ${describeError(error)}`, { cause: error });
  }
  try {
    const half = ++writes === killInWrite ? data.length >> 1 : data.length;
    writeAll(fd, data.subarray(0, half));
    if (half < data.length) process.kill(process.pid, 'SIGKILL');
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw new Error(`cannot write ${path}: ${describeError(error)}`, { cause: error });
  }
  closeSync(fd);
  renameSync(temporary, path);
  syncFolder(dirname(path));
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let at = 0; at < data.length;) at += writeSync(fd, data, at, data.length - at);
}

/** Makes a rename durable (a no-op where folders cannot be opened for syncing). */
function syncFolder(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a folder; the rename itself is still atomic.
  }
}

/** Removes `*.tmp-PID` files in `dir` left by processes killed while writing; returns their names. */
export function removeStaleTemporaries(dir: string): string[] {
  const stale = readdirSync(dir).filter((name) => {
    const pid = TEMPORARY.exec(name)?.[1];
    return pid !== undefined && !processAlive(Number(pid));
  });
  for (const name of stale) rmSync(join(dir, name), { force: true });
  return stale;
}

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** "no such file", "permission denied", … rather than Node's `ENOENT: no such file…, open 'x'`. */
export function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const known: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EISDIR: 'it is a folder',
    ENOTDIR: 'a part of the path is not a folder',
    ENOSPC: 'no space left on the device',
    EROFS: 'read-only file system',
    EEXIST: 'it already exists',
  };
  return (code && known[code]) ?? (error as Error).message;
}

/** A whole file; a missing or unreadable one is named with `what` ("checkpoint", "image", …). */
export function readFileBytes(path: string, what = 'file'): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${what} ${path}: ${describeError(error)}`, { cause: error });
  }
}

/** Runs `use` on a file opened for reading, with its size; a missing or unreadable one is named
 * with `what`. For reading a header without the whole file. */
export function withOpenFile<T>(path: string, what: string, use: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new Error(`cannot read ${what} ${path}: ${describeError(error)}`, { cause: error });
  }
  try {
    return use(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** A text file's non-empty lines, trimmed. */
export function readLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}
