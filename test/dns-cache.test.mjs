// DNS once per host name, not once per connection: 100 images from `localhost` over a server
// that closes the connection after every third response cost the library's fetcher one
// lookup. Lookups are counted for real, in a child process, as libuv and c-ares get them
// (support/count-lookups.mjs: getaddrinfo calls and c-ares queries), and undici's plain
// Agent, counted the same way, shows one per connection. The cache is the connections'
// own lookup, so undici keeps a pool per host name: two HTTPS names on one address keep
// their connections. Over TLS the name is still what is checked (SNI, the certificate,
// Host), over HTTP/1.1 and HTTP/2; an IPv6 address in a URL is not looked up; through a
// proxy this machine looks nothing up. Last, the cache's rules on the lookup itself.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { ADDRCONFIG } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cachedLookup, DNS_MAX_NAMES, DNS_MAX_TTL_MS } from '../dist/fetch/dns-cache.js';
import { PHOTOS } from './support/cdn.mjs';
import { startConnectProxy } from './support/connect-proxy.mjs';
import { tempDir } from './support/run.mjs';
import { HAVE_OPENSSL, makeCertificate } from './support/tls.mjs';
import { unlessMissing } from './support/needs.mjs';

const COUNTER = new URL('./support/count-lookups.mjs', import.meta.url).href;
const FETCH_MANY = new URL('./support/fetch-many.mjs', import.meta.url).pathname;
const IN_CI = process.env.CI === 'true';
const HAVE_UNSHARE = spawnSync('unshare', ['-m', 'true']).status === 0;

/**
 * Why a test that needs openssl or `unshare -m` (root, or CAP_SYS_ADMIN) skips here, or
 * false; under CI=true it runs, and `requireInCi` fails it where the tool is missing.
 * @param {{ openssl?: boolean, unshare?: boolean }} needs
 */
function skipWithout(needs) {
  if (IN_CI) return false;
  if (needs.openssl && !HAVE_OPENSSL) return 'openssl is needed to make a certificate';
  if (needs.unshare && !HAVE_UNSHARE) return 'unshare -m is not available here (it needs root or CAP_SYS_ADMIN); under CI=true this fails instead';
  return false;
}

/** @param {{ openssl?: boolean, unshare?: boolean }} needs */
function requireInCi(needs) {
  if (needs.openssl) assert.ok(HAVE_OPENSSL, 'CI=true: openssl is needed to make a certificate');
  if (needs.unshare) assert.ok(HAVE_UNSHARE, 'CI=true: `unshare -m` (root, or CAP_SYS_ADMIN) is needed to give the fetching process host names of its own');
}

/** The environment without proxy variables, so nothing here goes through a proxy by accident. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/_proxy$/i.test(key)));

/**
 * @param {{ urls: string[], via: 'fetcher' | 'agent', fetch?: object, inFlight?: number }} job
 * @param {NodeJS.ProcessEnv} [env]
 * @param {{ hosts?: string }} [where] `hosts`: a hosts file the child sees as /etc/hosts (in a mount namespace of its own)
 * @returns {Promise<{ lookups: number, ms: number, results: { ok: boolean, reason?: string, detail?: string }[] }>}
 */
function fetchInChild(job, env = {}, { hosts } = {}) {
  const node = [process.execPath, '--import', COUNTER, FETCH_MANY, JSON.stringify(job)];
  const [command, ...args] = hosts === undefined ? node : ['unshare', '-m', '--', 'sh', '-c', 'mount --bind "$1" /etc/hosts && shift && exec "$@"', 'hosts', hosts, ...node];
  return new Promise((resolve, reject) => {
    const child = spawn(command ?? '', args, { env: { ...CLEAN_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

    it("undici's plain Agent looks the name up for every connection it opens (the count is real)", async (t) => {
      connections = 0;
      const { lookups, results } = await fetchInChild({ urls: urls(origin, 100), via: 'agent' });
      t.diagnostic(`${connections} connections, ${lookups} lookups`);
      assert.equal(results.filter((result) => result.ok).length, 100);
      assert.ok(connections >= 34, `a new connection after every third response: ${connections}`);
      assert.equal(lookups, connections, 'one getaddrinfo call per connection');
    });

    it("the fetcher looks it up once for 100 images over 34 or more connections", async (t) => {
      connections = 0;
      const { lookups, results } = await fetchInChild({ urls: urls(origin, 100), via: 'fetcher' });
      t.diagnostic(`${connections} connections, ${lookups} lookups`);
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

  // Two HTTPS names on one address (a CDN's), requested alternately, 16 at a time. Pools kept
  // per address close a connection whenever the next request on it is for the other name
  // (undici checks the servername): 180 to 220 TLS connections for 400 requests. Pools kept
  // per name open at most two per request in flight to the name (undici opens another while
  // the one whose response just ended has not yet told its pool it is free): 32 here, and
  // never more than 64 whatever the split of the 16 between the names. The count does not
  // depend on the machine's speed. The names exist only in the child's own /etc/hosts (a
  // mount namespace: unshare -m); the server counts TLS connections.
  describe('two HTTPS names on one address, requested alternately', { skip: skipWithout({ openssl: true, unshare: true }) }, () => {
    const IN_FLIGHT = 16;
    /** @type {Awaited<ReturnType<typeof tempDir>>} */
    let work;
    /** @type {import('node:https').Server} */
    let server;
    let certPath = '';
    let hosts = '';
    let port = 0;
    let handshakes = 0;
    /** @type {{ servername: unknown, host: unknown }[]} */
    const seen = [];
    before(async () => {
      requireInCi({ openssl: true, unshare: true });
      work = await tempDir();
      const certificate = await makeCertificate(work.path, { name: 'one.test', altName: 'DNS:one.test,DNS:two.test' });
      certPath = certificate.certPath;
      hosts = join(work.path, 'hosts');
      await writeFile(hosts, `${await readFile('/etc/hosts', 'utf8')}\n127.0.0.1 one.test two.test\n`);
      server = createHttpsServer({ key: certificate.key, cert: certificate.cert }, (request, response) => {
        seen.push({ servername: /** @type {import('node:tls').TLSSocket} */ (request.socket).servername, host: request.headers.host });
        response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo);
      });
      server.on('secureConnection', () => handshakes++);
      port = await listen(server);
    });
    after(async () => {
      server?.closeAllConnections();
      await new Promise((resolve) => server ? server.close(() => resolve(undefined)) : resolve(undefined));
      await work?.cleanup();
    });

    it(`400 requests take at most ${4 * IN_FLIGHT} TLS connections (two per request in flight, per name), each for its own name`, async (t) => {
      const names = ['one.test', 'two.test'];
      const alternating = Array.from({ length: 400 }, (_, i) => `https://${names[i % 2]}:${port}/aqua.jpg?${i}`);
      const { lookups, ms, results } = await fetchInChild({ urls: alternating, via: 'fetcher', inFlight: IN_FLIGHT }, { NODE_EXTRA_CA_CERTS: certPath }, { hosts });
      t.diagnostic(`${handshakes} TLS connections, ${ms} ms`);
      assert.deepEqual(results.filter((result) => !result.ok), []);
      assert.equal(lookups, 2, 'one lookup per name');
      assert.ok(handshakes <= 4 * IN_FLIGHT, `${handshakes} TLS connections for 400 requests, ${IN_FLIGHT} in flight`);
      assert.equal(seen.length, 400);
      assert.deepEqual(seen.filter(({ servername, host }) => host !== `${servername}:${port}`), [], 'every request went over a connection made for its own name');
    });
  });

  describe('an IPv6 address in the URL', () => {
    /** @type {import('node:http').Server} */
    let server;
    let port = 0;
    before(async () => {
      server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo));
      port = await new Promise((resolve, reject) => server.once('error', reject).listen(0, '::1', () => resolve(/** @type {import('node:net').AddressInfo} */ (server.address()).port)));
    });
    after(() => close(server));

    it('is connected to as it is written: no lookup', async () => {
      const { lookups, results } = await fetchInChild({ urls: urls(`http://[::1]:${port}`, 10), via: 'fetcher' });
      assert.deepEqual(results.filter((result) => !result.ok), []);
      assert.equal(lookups, 0);
    });
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

// The cache's rules, on the lookup itself: what net.connect is handed, when it asks again.
// `resolve` stands for the system's resolver here, so the answers (both families, expired
// or not, slow) are the test's to choose; end to end, above, it is the real one.
describe('the cached lookup', () => {
  const DUAL = [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }];
  /**
   * @param {(name: string) => Promise<readonly import('node:dns').LookupAddress[]>} answer
   * @param {{ timeoutMs?: number, now?: () => number }} [options]
   */
  function counted(answer, options = {}) {
    const asked = /** @type {string[]} */ ([]);
    const lookup = cachedLookup({ timeoutMs: options.timeoutMs ?? 10_000, now: options.now, resolve: (name) => (asked.push(name), answer(name)) });
    /** @param {string} name @param {import('node:dns').LookupOptions} lookupOptions */
    const ask = (name, lookupOptions) =>
      new Promise((resolve, reject) => lookup(name, lookupOptions, (error, address, family) => (error ? reject(error) : resolve(lookupOptions.all ? address : { address, family }))));
    return { asked, ask };
  }

  it("hands net.connect every address in the resolver's order for Happy Eyeballs, else an IPv4 one", async () => {
    const { asked, ask } = counted(async () => DUAL);
    assert.deepEqual(await ask('dual.test', { all: true, hints: ADDRCONFIG }), DUAL);
    assert.deepEqual(await ask('dual.test', { hints: ADDRCONFIG }), { address: '127.0.0.1', family: 4 });
    assert.deepEqual(await ask('dual.test', { family: 6 }), { address: '::1', family: 6 });
    assert.deepEqual(await ask('dual.test', { family: 6, all: true }), [{ address: '::1', family: 6 }]);
    assert.deepEqual(asked, ['dual.test']);
    const { ask: askV6Only } = counted(async () => [{ address: '::1', family: 6 }]);
    assert.deepEqual(await askV6Only('v6.test', {}), { address: '::1', family: 6 });
    await assert.rejects(askV6Only('v6.test', { family: 4 }), { code: 'ENOTFOUND' });
  });

  it('shares one lookup among concurrent askers, and keeps the answer 60 s', async () => {
    let clock = 1_000_000;
    const { asked, ask } = counted(async () => DUAL, { now: () => clock });
    await Promise.all(Array.from({ length: 16 }, () => ask('busy.test', { all: true })));
    assert.deepEqual(asked, ['busy.test']);
    clock += DNS_MAX_TTL_MS;
    await ask('busy.test', { all: true });
    assert.deepEqual(asked, ['busy.test'], 'still fresh at 60 s');
    clock += 1;
    await ask('busy.test', { all: true });
    assert.deepEqual(asked, ['busy.test', 'busy.test'], 'asked again after 60 s');
  });

  it('keeps no failure: the next connection asks again', async () => {
    let fail = true;
    const { asked, ask } = counted(async (name) => {
      if (fail) throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${name}`), { code: 'EAI_AGAIN' });
      return DUAL;
    });
    await assert.rejects(ask('flaky.test', {}), { code: 'EAI_AGAIN' });
    fail = false;
    assert.deepEqual(await ask('flaky.test', {}), { address: '127.0.0.1', family: 4 });
    assert.equal(asked.length, 2);
  });

  it('gives up on a lookup after the connect timeout, as a connect timeout, and asks again next time', async () => {
    const { asked, ask } = counted(() => new Promise(() => {}), { timeoutMs: 50 });
    await assert.rejects(ask('silent.test', {}), { code: 'UND_ERR_CONNECT_TIMEOUT', message: 'no DNS answer for silent.test within 0.05 s' });
    await assert.rejects(ask('silent.test', {}), { code: 'UND_ERR_CONNECT_TIMEOUT' });
    assert.equal(asked.length, 2);
  });

  it(`keeps at most ${DNS_MAX_NAMES} names, dropping the oldest`, async () => {
    const { asked, ask } = counted(async () => DUAL);
    for (let i = 0; i <= DNS_MAX_NAMES; i++) await ask(`host${i}.test`, {});
    await ask(`host${DNS_MAX_NAMES}.test`, {});
    await ask('host1.test', {});
    assert.equal(asked.length, DNS_MAX_NAMES + 1, 'the newest and the second oldest are still kept');
    await ask('host0.test', {});
    assert.equal(asked.length, DNS_MAX_NAMES + 2, 'the oldest was dropped');
  });
});
