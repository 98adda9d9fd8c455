// A photo server behind a per-client request rate limiter that behaves like nginx's
// `limit_req` (ngx_http_limit_req_module, ngx_http_limit_req_lookup): a leaky bucket of
// `ratePerSecond` per client address; a request is let through while the bucket's excess
// after adding it stays within `burst` (with `nodelay`: at once), otherwise it is
// rejected with `status` (`limit_req_status 429`) and no Retry-After header, and a
// rejected request does not fill the bucket. Common CDN and API rate limiters answer the
// same way. Listens on 127.0.0.1 only.
//
//   /photos/<name>/<key>   examples/photos/<name>, when the limiter lets the request through
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';

const PHOTOS = new URL('../../examples/photos/', import.meta.url).pathname;

/**
 * @param {{ ratePerSecond: number, burst: number, status?: number }} limit
 */
export async function startRateLimitedServer({ ratePerSecond, burst, status = 429 }) {
  /** @type {Map<string, Buffer>} */
  const photos = new Map();
  /** nginx keeps the excess in thousandths of a request; so does this. @type {Map<string, { excess: number, at: number }>} */
  const buckets = new Map();
  const counts = { requests: 0, rejected: 0, served: 0 };
  /** Requests per path, to check a sample's attempts. @type {Map<string, number>} */
  const perPath = new Map();

  /** @param {string} client */
  function letThrough(client) {
    const now = Date.now();
    const bucket = buckets.get(client);
    if (!bucket) {
      buckets.set(client, { excess: 0, at: now });
      return true;
    }
    const excess = Math.max(0, bucket.excess - (ratePerSecond * (now - bucket.at)) + 1000);
    if (excess > burst * 1000) return false;
    bucket.excess = excess;
    bucket.at = now;
    return true;
  }

  const server = createServer(async (request, response) => {
    counts.requests++;
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    perPath.set(url.pathname, (perPath.get(url.pathname) ?? 0) + 1);
    if (!letThrough(request.socket.remoteAddress ?? '?')) {
      counts.rejected++;
      response.writeHead(status, { 'content-type': 'text/html' }).end(`<html><body><h1>${status}</h1></body></html>\n`);
      return;
    }
    const [, route, name = ''] = url.pathname.split('/');
    if (route !== 'photos' || !/^[\w.-]+$/.test(name)) {
      response.writeHead(404).end();
      return;
    }
    let body = photos.get(name);
    if (!body) {
      body = await readFile(join(PHOTOS, name)).catch(() => undefined);
      if (!body) {
        response.writeHead(404).end();
        return;
      }
      photos.set(name, body);
    }
    counts.served++;
    response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
  });
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    origin: `http://127.0.0.1:${port}`,
    counts,
    /** @param {string} path */
    requestsFor: (path) => perPath.get(path) ?? 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
