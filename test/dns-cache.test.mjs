// DNS once per host name, not once per connection: 100 images from `localhost` over a server
// that closes the connection after every third response cost the library's fetcher one
// getaddrinfo call. The calls are counted for real, in a child process, as libuv gets them
// (support/count-lookups.mjs), and undici's plain Agent, counted the same way, shows one
// per connection. Over TLS the name is still what is checked (SNI, the certificate, Host),
// over HTTP/1.1 and HTTP/2; through a proxy this machine looks nothing up.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PHOTOS } from './support/cdn.mjs';
import { startConnectProxy } from './support/connect-proxy.mjs';
import { tempDir } from './support/run.mjs';
import { HAVE_OPENSSL, makeCertificate } from './support/tls.mjs';
import { unlessMissing } from './support/needs.mjs';

const COUNTER = new URL('./support/count-lookups.mjs', import.meta.url).href;
const FETCH_MANY = new URL('./support/fetch-many.mjs', import.meta.url).pathname;
/** The environment without proxy variables, so nothing here goes through a proxy by accident. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/_proxy$/i.test(key)));

/**
 * @param {{ urls: string[], via: 'fetcher' | 'agent', fetch?: object }} job
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Promise<{ lookups: number, results: { ok: boolean, reason?: string, detail?: string }[] }>}
 */
function fetchInChild(job, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', COUNTER, FETCH_MANY, JSON.stringify(job)], { env: { ...CLEAN_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`fetch-many exited ${code}: ${stderr}`))));
  });
}

/** @param {import('node:net').Server | import('node:http2').Http2SecureServer} server */
async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return address.port;
}

/** @param {import('node:http').Server} server */
function close(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve(undefined)));
}

/** @param {string} origin @param {number} count */
const urls = (origin, count) => Array.from({ length: count }, (_, i) => `${origin}/aqua.jpg?${i}`);

describe('DNS once per host name', () => {
  /** @type {Buffer} */
  let photo;
  before(async () => {
    const found = await lookup('localhost', { all: true });
    assert.ok(found.some(({ address }) => address === '127.0.0.1'), `these tests fetch from localhost on 127.0.0.1, but localhost resolves to ${JSON.stringify(found)}`);
    photo = await readFile(join(PHOTOS, 'aqua.jpg'));
  });

  describe('over HTTP, with the connection closed after every third response', () => {
    let responses = 0;
    let connections = 0;
    /** @type {import('node:http').Server} */
    let server;
    let origin = '';
    before(async () => {
      server = createServer((_request, response) => {
        const closing = ++responses % 3 === 0;
        response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length, ...(closing ? { connection: 'close' } : {}) });
        response.end(photo);
      });
      server.on('connection', () => connections++);
      origin = `http://localhost:${await listen(server)}`;
    });
    after(() => close(server));

    it("undici's plain Agent looks the name up for every connection it opens (the count is real)", async () => {
      connections = 0;
      const { lookups, results } = await fetchInChild({ urls: urls(origin, 100), via: 'agent' });
      assert.equal(results.filter((result) => result.ok).length, 100);
      assert.ok(connections >= 34, `a new connection after every third response: ${connections}`);
      assert.equal(lookups, connections, 'one getaddrinfo call per connection');
    });

    it("the fetcher looks it up once for 100 images over 34 or more connections", async () => {
      connections = 0;
      const { lookups, results } = await fetchInChild({ urls: urls(origin, 100), via: 'fetcher' });
      assert.deepEqual(results.filter((result) => !result.ok), []);
      assert.ok(connections >= 34, `a new connection after every third response: ${connections}`);
      assert.equal(lookups, 1);
    });
  });

  describe('over TLS', { skip: unlessMissing(HAVE_OPENSSL, 'openssl (to make a certificate)') }, () => {
    /** @type {Awaited<ReturnType<typeof tempDir>>} */
    let work;
    /** @type {import('node:http2').Http2SecureServer} */
    let server;
    let certPath = '';
    let port = 0;
    /** @type {{ version: string, servername: unknown, authority: unknown }[]} */
    const seen = [];
    before(async () => {
      work = await tempDir();
      // Valid for the name only: had the address replaced it in the check, every fetch would fail.
      const certificate = await makeCertificate(work.path, { name: 'localhost', altName: 'DNS:localhost' });
      certPath = certificate.certPath;
      let responses = 0;
      server = createSecureServer({ key: certificate.key, cert: certificate.cert, allowHTTP1: true }, (request, response) => {
        const socket = /** @type {import('node:tls').TLSSocket} */ (request.socket);
        seen.push({ version: request.httpVersion, servername: socket.servername, authority: request.headers[':authority'] ?? request.headers.host });
        const closing = request.httpVersion === '1.1' && ++responses % 3 === 0;
        response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length, ...(closing ? { connection: 'close' } : {}) });
        response.end(photo);
      });
      port = await listen(server);
    });
    after(async () => {
      await new Promise((resolve) => server.close(() => resolve(undefined)));
      await work.cleanup();
    });

    for (const [label, version, http2] of /** @type {const} */ ([['HTTP/1.1', '1.1', false], ['HTTP/2', '2.0', true]])) {
      it(`${label}: SNI, the certificate and the Host are the name's; one lookup`, async () => {
        seen.length = 0;
        const { lookups, results } = await fetchInChild({ urls: urls(`https://localhost:${port}`, 30), via: 'fetcher', fetch: { http2 } }, { NODE_EXTRA_CA_CERTS: certPath });
        assert.deepEqual(results.filter((result) => !result.ok), []);
        assert.equal(lookups, 1);
        assert.equal(seen.length, 30);
        assert.deepEqual(new Set(seen.map((request) => JSON.stringify(request))), new Set([JSON.stringify({ version, servername: 'localhost', authority: `localhost:${port}` })]));
      });
    }
  });

  describe('through a proxy', () => {
    /** @type {Awaited<ReturnType<typeof startConnectProxy>>} */
    let proxy;
    /** @type {import('node:http').Server} */
    let server;
    let port = 0;
    before(async () => {
      proxy = await startConnectProxy();
      server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo));
      port = await listen(server);
    });
    after(async () => {
      await proxy.close();
      await close(server);
    });

    it('the proxy resolves the name: no lookup here', async () => {
      const { lookups, results } = await fetchInChild({ urls: urls(`http://localhost:${port}`, 10), via: 'fetcher' }, { HTTP_PROXY: proxy.url });
      assert.deepEqual(results.filter((result) => !result.ok), []);
      assert.equal(lookups, 0);
      assert.ok((proxy.tunnels.get(`localhost:${port}`) ?? 0) >= 1, 'the proxy was asked for the name');
    });
  });
});
