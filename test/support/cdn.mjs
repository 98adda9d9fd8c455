// The test CDN: the project's loopback CDN over the bundled photos and test fixtures,
// plus routes that misbehave the way real CDNs do. Everything listens on 127.0.0.1.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as testHooks from 'node:test';
import { startLoopbackCdn } from '../../dist/demo/loopback-cdn.js';
import { tempDir } from './run.mjs';

export const PHOTOS = new URL('../../examples/photos/', import.meta.url).pathname;
export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
/** The bundled photos, by file name. */
export const PHOTO_FILES = ['aqua.jpg', 'dragonfly.jpg', 'friends.jpg', 'wine.jpg', 'canyon-wren.jpg', 'yellow-flower.jpg', 'otters.jpg', 'storm.jpg', 'drop.png', 'flowers.webp', 'spiral.jpg', 'sunset.jpg'];

/**
 * Routes besides /photos/<name>:
 *   /fixtures/<name>      a file from test/fixtures
 *   /status/<code>        that status with a small text body
 *   /html                 an HTML page with status 200 and Content-Type image/jpeg
 *   /cut/<name>           the photo's full Content-Length, half the body, then a reset
 *   /chunked/<name>       the photo without Content-Length, in 16 KiB chunks
 *   /stall/<name>         headers and the first 1 KiB, then nothing
 */
export async function startTestCdn() {
  /** @type {Set<import('node:http').ServerResponse>} */
  const stalled = new Set();
  const cdn = await startLoopbackCdn({
    root: PHOTOS,
    handle: async (request, response) => {
      const [, route = '', ...rest] = new URL(request.url ?? '/', 'http://127.0.0.1').pathname.split('/');
      const name = decodeURIComponent(rest.join('/'));
      switch (route) {
        case 'fixtures': {
          const body = await readFile(join(FIXTURES, name.replace(/\.\./g, '')));
          response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
          return true;
        }
        case 'status':
          response.writeHead(Number(name), { 'content-type': 'text/plain' }).end(`status ${name}\n`);
          return true;
        case 'html':
          response.writeHead(200, { 'content-type': 'image/jpeg' }).end('<!doctype html><html><body>Checking your browser…</body></html>');
          return true;
        case 'cut': {
          const body = await readFile(join(PHOTOS, name));
          response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
          response.write(body.subarray(0, body.length >> 1), () => response.destroy());
          return true;
        }
        case 'chunked': {
          const body = await readFile(join(PHOTOS, name));
          response.writeHead(200, { 'content-type': 'image/jpeg' });
          for (let at = 0; at < body.length; at += 16384) response.write(body.subarray(at, at + 16384));
          response.end();
          return true;
        }
        case 'stall': {
          const body = await readFile(join(PHOTOS, name));
          response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
          response.write(body.subarray(0, 1024));
          stalled.add(response);
          response.on('close', () => stalled.delete(response));
          return true;
        }
        default:
          return false;
      }
    },
  });
  return {
    origin: cdn.origin,
    requests: cdn.requests,
    /** @param {string} path */
    url: (path) => `${cdn.origin}${path}`,
    async close() {
      for (const response of stalled) response.destroy();
      await cdn.close();
    },
  };
}

/**
 * Inside a `describe`: the test CDN and a fresh folder for its tests, started before them
 * and removed after. Read the fields in the tests (they are set by then).
 */
export function withTestCdn() {
  const { before, after } = testHooks;
  const context = /** @type {{ cdn: Awaited<ReturnType<typeof startTestCdn>>, work: Awaited<ReturnType<typeof tempDir>> }} */ ({});
  before(async () => {
    context.cdn = await startTestCdn();
    context.work = await tempDir();
  });
  after(async () => {
    await context.cdn.close();
    await context.work.cleanup();
  });
  return context;
}
