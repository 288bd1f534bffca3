/** Native libraries through koffi (an FFI library whose npm package ships its prebuilt binaries). */
import { createRequire } from 'node:module';
import { type EnvironmentVariable, readEnvironment } from '../../config.js';

export interface NativeLibrary {
  func(signature: string): (...args: unknown[]) => unknown;
  /** The address of an exported variable. */
  symbol(name: string, type: string): unknown;
}

/** The part of koffi's API the native backend uses. */
export interface Koffi {
  load(path: string): NativeLibrary;
  opaque(name: string): unknown;
  pointer(name: string, type: unknown): unknown;
  struct(name: string, fields: Record<string, string>): unknown;
  address(value: unknown): bigint;
  decode(value: unknown, type: string): unknown;
}

/**
 * The first of `candidates` that loads — or only the file the environment variable `variable`
 * names — or one line saying why none did: `name` is the library's name in it, `debian` the
 * package that installs it.
 */
export function openLibrary(
  name: string,
  candidates: readonly string[],
  variable: EnvironmentVariable,
  debian: string,
): { koffi: Koffi; lib: NativeLibrary; path: string } | string {
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (error) {
    return `the koffi package cannot be loaded (${(error as Error).message.split('\n')[0]})`;
  }
  const wanted = readEnvironment(variable);
  const tried: string[] = [];
  for (const path of wanted ? [wanted] : candidates) {
    try {
      return { koffi, lib: koffi.load(path), path };
    } catch {
      tried.push(path);
    }
  }
  return `no ${name} library found (tried ${tried.join(', ')}); install Debian's ${debian}, or name one with ${variable}`;
}
