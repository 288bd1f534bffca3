/**
 * `alexnet serve`: the browser app (dist/app/, built by tools/build-app.mjs) over HTTP, with the
 * headers that make the page cross-origin isolated — without them a browser gives it no
 * SharedArrayBuffer, and the wasm backend runs on one thread. Files only, from that folder only.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

/** What a static host must send with every file of the app for threads (README: "The browser app"). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.gz': 'application/octet-stream',
  '.json': 'application/json',
  '.png': 'image/png',
};

/** dist/app beside this module's package. */
export function appFolder(): string {
  return new URL('../../app/', import.meta.url).pathname;
}

export interface ServeOptions {
  port: number;
  host: string;
  /** The built app (default: this package's). */
  root?: string;
}

/** Starts serving; resolves with the server and its address once it listens. */
export async function serveApp(o: ServeOptions): Promise<{ server: Server; url: string }> {
  const root = o.root ?? appFolder();
  if (!existsSync(join(root, 'index.html')))
    throw new Error(`the browser app is not built (${join(root, 'index.html')} is missing): run npm run build`);
  const server = createServer((request, response) => {
    const send = (status: number, text: string) => {
      response.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(text);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(405, 'only GET and HEAD');
    let path: string;
    try {
      path = decodeURIComponent(new URL(request.url ?? '/', 'http://host').pathname);
    } catch {
      return send(400, 'bad path');
    }
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(normalize(root.endsWith(sep) ? root : root + sep))) return send(404, 'not found');
    const stat = statSync(file, { throwIfNoEntry: false });
    if (!stat?.isFile()) return send(404, 'not found');
    response.writeHead(200, {
      ...ISOLATION_HEADERS,
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': stat.size,
      'Cache-Control': 'no-cache',
    });
    if (request.method === 'HEAD') return response.end();
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `port ${o.port} on ${o.host} is in use: give another with --port`
            : `cannot listen on ${o.host}:${o.port}: ${error.message}`,
        ),
      ),
    );
    server.listen(o.port, o.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? 'localhost' : o.host;
  return { server, url: `http://${host}:${port}/` };
}

/** Opens `url` in the desktop's browser; resolves with why not, when it cannot. */
export async function openInBrowser(url: string): Promise<string | undefined> {
  const { spawn } = await import('node:child_process');
  const [command, ...args] =
    process.platform === 'darwin' ? ['open', url] : process.platform === 'win32' ? ['cmd', '/c', 'start', '', url] : ['xdg-open', url];
  return new Promise((resolve) => {
    const child = spawn(command!, args, { stdio: 'ignore', detached: true });
    child.once('error', (error) => resolve(`cannot open a browser (${command}: ${error.message})`));
    child.once('spawn', () => {
      child.unref();
      resolve(undefined);
    });
  });
}
