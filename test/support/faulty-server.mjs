// A fault-injecting image server on loopback addresses, for the fetch tests and the
// fault benchmark. Each path names a behaviour; state is kept per path (without the query)
// so "fail twice, then succeed" works across retries. It records every request, the
// requests in flight per host address, and the most ever in flight.
//
//   /ok/<key>                    a real JPEG
//   /status/<code>/<key>         always that status
//   /flaky/<code>/<n>/<key>      <code> for the first <n> requests, then the JPEG; ?retry-after=S or ?retry-after=date:S
//   /reset/<n>/<key>             the connection reset for the first <n> requests, then the JPEG
//   /cut/<n>/<key>               half the body (full Content-Length) for the first <n> requests, then the JPEG
//   /html/<key>                  an HTML page with status 200
//   /stall-headers/<key>         never answers
//   /stall-body/<key>            headers and 1 KiB, then nothing
//   /drip/<key>                  one byte every 100 ms, forever (never idle, never done)
//   /redirect/<n>/<key>          <n> redirects, then the JPEG
//   /loop/<key>                  redirects back and forth forever
//   /to-file/<key>               redirects to file:///etc/passwd
//   /robots/<value>/<key>        the JPEG with X-Robots-Tag: <value>
//   /slow/<ms>/<key>             the JPEG after <ms> milliseconds
//   /photo/<ms>/<name>/<key>     examples/photos/<name> after <ms> milliseconds
//   /limited/<max>/<key>         429 (Retry-After 1) when more than <max> requests are in flight to this host, else the JPEG after 50 ms
//   /imgix/<name>                a photo from examples/photos, scaled imgix-style when ?w= and ?h= are given
//   /gate/<status>/<name>/<key>  the first request waits until the test calls open(<key>), then answers
//                                <status> (200: examples/photos/<name>); later requests get the photo at once
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';

const PHOTOS = new URL('../../examples/photos/', import.meta.url).pathname;

/**
 * @param {{ hosts?: string[] }} [options] loopback addresses to listen on (one server each, same port not required)
 */
export async function startFaultyServer(options = {}) {
  const jpeg = await readFile(join(PHOTOS, 'storm.jpg'));
  const hosts = options.hosts ?? ['127.0.0.1'];
  /** @type {Map<string, number>} */
  const seen = new Map();
  /** @type {Map<string, number>} */
  const inFlight = new Map();
  /** @type {Array<{ at: number, host: string, path: string, query: string, inFlight: number, status?: number, closedAt?: number }>} */
  const log = [];
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  /** @type {Map<string, { opened: Promise<void>, open: () => void }>} */
  const gates = new Map();
  /** @param {string} key */
  const gate = (key) => {
    let found = gates.get(key);
    if (!found) {
      /** @type {() => void} */
      let open = () => {};
      const opened = new Promise((resolve) => (open = () => resolve(undefined)));
      found = { opened, open };
      gates.set(key, found);
    }
    return found;
  };

  /** @param {import('node:http').IncomingMessage} request @param {import('node:http').ServerResponse} response */
  async function handle(request, response) {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const host = request.socket.localAddress ?? '?';
    const count = (seen.get(url.pathname) ?? 0) + 1;
    seen.set(url.pathname, count);
    const current = (inFlight.get(host) ?? 0) + 1;
    inFlight.set(host, current);
    /** @type {{ at: number, host: string, path: string, query: string, inFlight: number, status?: number, closedAt?: number }} */
    const entry = { at: Date.now(), host, path: url.pathname, query: url.search, inFlight: current };
    log.push(entry);
    // A request stops counting as in flight when its whole response is handed to the
    // socket (see send), or when its socket is gone, whichever comes first.
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight.set(host, (inFlight.get(host) ?? 1) - 1);
    };
    response.on('close', () => {
      entry.closedAt = Date.now();
      finish();
    });
    const send = (status, headers = {}, body = jpeg) => {
      entry.status = status;
      finish(); // the whole response is handed over now; the client cannot be done sooner
      response.writeHead(status, { 'content-length': body.length, 'content-type': 'image/jpeg', ...headers }).end(body);
    };
    const [, route = '', ...parts] = url.pathname.split('/');
    const param = parts[0] ?? '';
    switch (route) {
      case 'ok':
        return send(200);
      case 'status':
        return send(Number(param), { 'content-type': 'text/plain' }, Buffer.from(`status ${param}\n`));
      case 'flaky': {
        const n = Number(parts[1]);
        if (count > n) return send(200);
        const retryAfter = url.searchParams.get('retry-after');
        const headers = {};
        if (retryAfter?.startsWith('date:')) {
          headers['retry-after'] = new Date(Date.now() + Number(retryAfter.slice(5)) * 1000).toUTCString();
        } else if (retryAfter) headers['retry-after'] = retryAfter;
        return send(Number(param), { ...headers, 'content-type': 'text/plain' }, Buffer.from('try later\n'));
      }
      case 'reset':
        if (count > Number(param)) return send(200);
        entry.status = 0;
        request.socket.resetAndDestroy();
        return;
      case 'cut':
        if (count > Number(param)) return send(200);
        entry.status = 200;
        response.writeHead(200, { 'content-length': jpeg.length, 'content-type': 'image/jpeg' });
        response.write(jpeg.subarray(0, jpeg.length >> 1), () => response.destroy());
        return;
      case 'html':
        return send(200, { 'content-type': 'image/jpeg' }, Buffer.from('<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>'));
      case 'stall-headers':
        return; // the socket stays open until the client gives up
      case 'stall-body':
        entry.status = 200;
        response.writeHead(200, { 'content-length': jpeg.length, 'content-type': 'image/jpeg' });
        response.write(jpeg.subarray(0, 1024));
        return;
      case 'drip': {
        entry.status = 200;
        response.writeHead(200, { 'content-length': jpeg.length, 'content-type': 'image/jpeg' });
        let at = 0;
        const timer = setInterval(() => response.write(jpeg.subarray(at, ++at)), 100);
        response.on('close', () => clearInterval(timer));
        return;
      }
      case 'redirect': {
        const left = Number(param);
        if (left <= 0) return send(200);
        return send(302, { location: `/redirect/${left - 1}/${parts.slice(1).join('/')}` }, Buffer.alloc(0));
      }
      case 'loop':
        return send(302, { location: `/loop/${param === 'a' ? 'b' : 'a'}/${parts.slice(1).join('/')}` }, Buffer.alloc(0));
      case 'to-file':
        return send(301, { location: 'file:///etc/passwd' }, Buffer.alloc(0));
      case 'robots':
        return send(200, { 'x-robots-tag': decodeURIComponent(param) });
      case 'slow':
        await new Promise((resolve) => setTimeout(resolve, Number(param)));
        return send(200);
      case 'photo': {
        await new Promise((resolve) => setTimeout(resolve, Number(param)));
        const body = await readFile(join(PHOTOS, parts[1] ?? ''));
        return send(200, { 'content-type': 'application/octet-stream' }, body);
      }
      case 'limited':
        if (current > Number(param)) return send(429, { 'retry-after': '1', 'content-type': 'text/plain' }, Buffer.from('slow down\n'));
        await new Promise((resolve) => setTimeout(resolve, 50));
        return send(200);
      case 'gate': {
        const body = await readFile(join(PHOTOS, parts[1] ?? ''));
        if (count === 1) {
          await gate(parts[2] ?? '').opened;
          if (param !== '200') return send(Number(param), { 'content-type': 'text/plain' }, Buffer.from(`status ${param}\n`));
        }
        return send(200, { 'content-type': 'application/octet-stream' }, body);
      }
      case 'imgix': {
        const original = await readFile(join(PHOTOS, param));
        const w = Number(url.searchParams.get('w') ?? 0);
        const h = Number(url.searchParams.get('h') ?? 0);
        const body = w && h ? await sharp(original).resize(w, h, { fit: 'inside' }).jpeg({ quality: 95 }).toBuffer() : original;
        return send(200, {}, body);
      }
      default:
        return send(404, { 'content-type': 'text/plain' }, Buffer.from('no such route\n'));
    }
  }

  const servers = await Promise.all(
    hosts.map(async (address) => {
      const server = createServer((request, response) => void handle(request, response).catch(() => response.destroy()));
      server.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise((resolve) => server.listen(0, address, () => resolve(undefined)));
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      return { server, origin: `http://${address}:${port}` };
    }),
  );

  return {
    origins: servers.map((entry) => entry.origin),
    origin: servers[0]?.origin ?? '',
    /** Requests seen for a path. @param {string} path */
    requestsFor: (path) => seen.get(path) ?? 0,
    totalRequests: () => log.length,
    log,
    /** Lets the first request of /gate/.../<key> answer. @param {string} key */
    open: (key) => gate(key).open(),
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map(({ server }) => new Promise((resolve) => server.close(() => resolve(undefined)))));
    },
  };
}
