// The address guard's end-to-end cases, run inside a network namespace of their own
// (test/address-guard.test.mjs starts this with `unshare -n -m`): only `lo` exists, with
// 169.254.169.254 added to it so a real server answers there, and /etc/hosts is a bind
// mount naming metadata.test (169.254.169.254) and mixed.test (169.254.169.254 and
// 127.0.0.1), and /etc/resolv.conf names a DNS server on 127.0.0.1 that never answers. No
// packet can leave the machine. Prints one JSON line: what each case got, and how many
// connections reached the metadata address while it ran.
//
//   node address-guard-worker.mjs <port>
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createFetcher } from '../../dist/fetch/fetcher.js';
import { resolveOptions } from '../../dist/options.js';
import { PHOTOS } from './cdn.mjs';
import { startConnectProxy } from './connect-proxy.mjs';
import { readResults, runCli, tempDir } from './run.mjs';

export const METADATA = '169.254.169.254';

const photo = await readFile(join(PHOTOS, 'aqua.jpg'));
/** Requests per path, per server. @type {Record<string, Map<string, number>>} */
const requests = { metadata: new Map(), images: new Map() };
let metadataConnections = 0;

/**
 * An image server: /x.jpg is a photo (the metadata address answers too, so only the guard
 * can stop a fetch there), /redirect?to=URL answers 302.
 * @param {'metadata' | 'images'} name @param {string} host @param {number} port
 */
async function startServer(name, host, port) {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://server');
    requests[name].set(url.pathname, (requests[name].get(url.pathname) ?? 0) + 1);
    const to = url.searchParams.get('to');
    if (url.pathname === '/redirect' && to) response.writeHead(302, { location: to }).end();
    else response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo);
  });
  if (name === 'metadata') server.on('connection', () => metadataConnections++);
  await new Promise((resolve) => server.listen(port, host, () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { server, port: address.port };
}

const images = await startServer('images', '127.0.0.1', 0);
const port = images.port;
// The same port on the metadata address, so mixed.test:port would reach either.
const metadata = await startServer('metadata', METADATA, port);
const proxy = await startConnectProxy();
// The DNS server /etc/resolv.conf names in here: it hears every query and answers none.
let dnsQueries = 0;
const silentDns = createSocket('udp4').on('message', () => dnsQueries++);
await new Promise((resolve) => silentDns.bind(53, '127.0.0.1', () => resolve(undefined)));
const work = await tempDir();

/**
 * One fetch through the library's fetcher, with the metadata connections it caused.
 * @param {import('../../dist/fetch/fetcher.js').Fetcher} fetcher @param {string} url
 */
async function fetchOne(fetcher, url) {
  const before = metadataConnections;
  const result = await fetcher.fetch(url);
  return { ok: result.ok, reason: result.ok ? undefined : result.reason, detail: result.ok ? undefined : result.detail, metadataConnections: metadataConnections - before };
}

/** @param {object} [fetch] */
const fetcherWith = (fetch = {}) => createFetcher(resolveOptions({ output: work.path, fetch: { retries: 0, ...fetch } }).fetch);

const report = {};
try {
  const open = fetcherWith();
  const redirect = (/** @type {string} */ to) => `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(to)}`;
  report.literal = await fetchOne(open, `http://${METADATA}:${port}/x.jpg`);
  report.mapped = await fetchOne(open, `http://[::ffff:${METADATA}]:${port}/x.jpg`);
  report.decimal = await fetchOne(open, `http://2852039166:${port}/x.jpg`);
  report.redirect = await fetchOne(open, redirect(`http://${METADATA}:${port}/x.jpg`));
  report.name = await fetchOne(open, `http://metadata.test:${port}/x.jpg`);
  report.redirectToName = await fetchOne(open, redirect(`http://metadata.test:${port}/x.jpg`));
  report.mixed = [];
  for (let i = 0; i < 12; i++) report.mixed.push(await fetchOne(open, `http://mixed.test:${port}/x.jpg?${i}`));
  report.loopback = await fetchOne(open, `http://127.0.0.1:${port}/x.jpg`);
  await open.close();

  // A name only DNS could answer, from a server that stays silent: the lookup has --connect-timeout.
  const impatient = fetcherWith({ connectTimeoutMs: 500 });
  report.silentDns = await fetchOne(impatient, `http://silent.test:${port}/x.jpg`);
  report.dnsQueries = dnsQueries;
  await impatient.close();

  // A proxy: names are its to resolve, except those of NO_PROXY hosts, which this machine connects to itself.
  process.env.NO_PROXY = 'metadata.test';
  const proxied = fetcherWith({ proxy: proxy.url, publicAddressesOnly: true });
  report.proxyLiteral = await fetchOne(proxied, `http://${METADATA}:${port}/x.jpg`);
  report.proxyNoProxyName = await fetchOne(proxied, `http://metadata.test:${port}/x.jpg`);
  report.proxyName = await fetchOne(proxied, `http://localhost:${port}/x.jpg?proxied`);
  report.proxyTunnels = Object.fromEntries(proxy.tunnels);
  await proxied.close();
  delete process.env.NO_PROXY;

  // The command line, with and without --public-addresses-only.
  const rows = [`http://127.0.0.1:${port}/x.jpg?cli`, `http://localhost:${port}/x.jpg?cli`]
    .map((url, i) => JSON.stringify({ id: `row${i}`, url, cogvlm_caption: 'loopback' }))
    .join('\n');
  for (const [name, flags] of /** @type {const} */ ([['strict', ['--public-addresses-only']], ['default', []]])) {
    const before = requests.images.get('/x.jpg') ?? 0;
    const results = join(work.path, `${name}.ndjson`);
    const outcome = await runCli(['--output', join(work.path, name), '--sink', 'null', '--resolution', '64', '--retries', '0', '--results', results, ...flags], { stdin: `${rows}\n` });
    report[name] = {
      code: outcome.code,
      stderr: outcome.stderr,
      results: (await readResults(results)).map(({ id, status, reason, detail }) => ({ id, status, reason, detail })),
      imageRequests: (requests.images.get('/x.jpg') ?? 0) - before,
    };
  }
  report.port = port;
  report.metadataRequests = Object.fromEntries(requests.metadata);
  report.metadataConnections = metadataConnections;
} finally {
  await proxy.close();
  silentDns.close();
  for (const { server } of [images, metadata]) {
    server.closeAllConnections();
    server.close();
  }
  await work.cleanup();
}
// Exit now: the silent server's lookup may still hold one of libuv's threads until its own timeout.
process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
