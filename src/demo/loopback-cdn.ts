/**
 * A tiny image CDN on 127.0.0.1 serving the files of one folder, for the demo, the tests
 * and the benchmark: nothing leaves the machine. It counts requests per path and can be
 * given a handler that answers some requests differently (the tests inject faults this way).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

export interface LoopbackCdnOptions {
  /** Files under `/photos/<name>` come from this folder. */
  readonly root: string;
  /** Answers a request itself and returns true, or returns false to serve it normally. */
  readonly handle?: (request: IncomingMessage, response: ServerResponse) => boolean | Promise<boolean>;
  /**
   * Keep each file in memory after its first request, as a CDN's edge cache does (the
   * bench: the server shares the pipeline's cores, and reading the disk again for every
   * request costs them what a remote CDN would not).
   */
  readonly cacheFiles?: boolean;
}

export interface LoopbackCdn {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** Requests seen per path (query string included). */
  readonly requests: Map<string, number>;
  close(): Promise<void>;
}

export async function startLoopbackCdn(options: LoopbackCdnOptions): Promise<LoopbackCdn> {
  const requests = new Map<string, number>();
  const server: Server = createServer((request, response) => {
    const path = request.url ?? '/';
    requests.set(path, (requests.get(path) ?? 0) + 1);
    void answer(request, response).catch(() => response.destroy());
  });

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (options.handle && (await options.handle(request, response))) return;
    const file = photoPath(options.root, new URL(request.url ?? '/', 'http://127.0.0.1').pathname);
    const body = file ? await contentsOf(file) : undefined;
    if (!file || !body) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    response.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': body.length,
    });
    response.end(body);
  }

  const cached = new Map<string, Buffer>();
  /** A photo's bytes (one read, one write: the photos are a few MB at most), or undefined when there is no such file. */
  async function contentsOf(file: string): Promise<Buffer | undefined> {
    const known = cached.get(file);
    if (known) return known;
    const body = await readFile(file).catch(() => undefined);
    if (body && options.cacheFiles) cached.set(file, body);
    return body;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `/photos/<name>` inside root, or undefined for anything that would leave it. */
function photoPath(root: string, pathname: string): string | undefined {
  if (!pathname.startsWith('/photos/')) return undefined;
  const name = normalize(decodeURIComponent(pathname.slice('/photos/'.length)));
  if (name.startsWith('..') || name.includes(`${sep}..`) || name.startsWith(sep)) return undefined;
  return join(root, name);
}
