// An image host for the queue tests, on 127.0.0.1, that counts what a photo CDN would
// see: requests per path and the most requests in flight at once. Every image is one
// small real PNG; /missing/... answers 404. Each answer waits `delayMs`, so requests from
// many workers overlap as they would against a real host.
import { createServer } from 'node:http';
import sharp from 'sharp';

/** @param {{ delayMs?: number }} [options] */
export async function startCountingServer({ delayMs = 20 } = {}) {
  const png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#4a8' } }).png().toBuffer();
  /** @type {Map<string, number>} */
  const requests = new Map();
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((request, response) => {
    const path = request.url ?? '/';
    requests.set(path, (requests.get(path) ?? 0) + 1);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      if (path.startsWith('/missing/')) response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      else response.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png);
    }, delayMs);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    base: `http://127.0.0.1:${address.port}`,
    requests,
    maxInFlight: () => maxInFlight,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}
