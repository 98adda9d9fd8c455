#!/usr/bin/env node
// HTTP/2 (--http2) against HTTP/1.1 keep-alive, over loopback TLS, with the tool's own
// fetcher (deadlines, byte cap, host gate) and nothing else: node:http2's server, in a
// process of its own, serves the bench's photos with both protocols from a certificate
// made here. The certificate is trusted through NODE_EXTRA_CA_CERTS, which Node reads at
// start, so the bench runs itself again with it. Rounds alternate; medians.
//
//   npm run build && node bench/http2.mjs [--rows 300] [--rounds 3] [--concurrency 16]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createFetcher } from '../dist/fetch/fetcher.js';
import { resolveOptions } from '../dist/options.js';
import { makeCertificate } from '../test/support/tls.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({ options: { rows: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '16' } } });
const folder = join(ROOT, '.bench-cache/photos');
const files = (await readdir(folder).catch(() => [])).filter((name) => name.endsWith('.jpg'));
const photos = files.length > 0 ? { folder, files } : { folder: join(ROOT, 'examples/photos'), files: (await readdir(join(ROOT, 'examples/photos'))).filter((name) => name.endsWith('.jpg')) };
const work = process.env.PCP_H2_WORK ?? (await mkdtemp(join(tmpdir(), 'pcp-h2-')));
if (!process.env.PCP_H2_WORK) {
  const { certPath } = await makeCertificate(work);
  const again = spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit', env: { ...process.env, PCP_H2_WORK: work, NODE_EXTRA_CA_CERTS: certPath } });
  await rm(work, { recursive: true, force: true });
  process.exit(again.status ?? 1);
}
const certPath = join(work, 'cert.pem');
const serverScript = join(work, 'server.mjs');
await writeFile(serverScript, `
import { createSecureServer } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
const [folder, key, cert] = process.argv.slice(2);
const server = createSecureServer({ key: await readFile(key), cert: await readFile(cert), allowHTTP1: true }, async (request, response) => {
  const name = decodeURIComponent(new URL(request.url, 'https://x').pathname.slice(1));
  const body = await readFile(join(folder, name)).catch(() => undefined);
  if (!body) return response.writeHead(404).end();
  response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
  response.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();
`);
const server = spawn(process.execPath, [serverScript, photos.folder, join(work, 'key.pem'), certPath], { stdio: ['pipe', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => server.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim()))));
try {
  const rows = Number(values.rows);
  const concurrency = Number(values.concurrency);
  const urls = Array.from({ length: rows }, (_, i) => `https://127.0.0.1:${port}/${photos.files[i % photos.files.length]}?${i}`);
  /** @type {Record<string, number[]>} */
  const speeds = { 'http/1.1': [], 'http/2': [] };
  let bytes = 0;
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, http2] of [['http/1.1', false], ['http/2', true]]) {
      const fetcher = createFetcher(resolveOptions({ output: work, fetch: { http2, concurrency, perHostConcurrency: concurrency } }).fetch);
      const started = performance.now();
      bytes = 0;
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < urls.length) {
          const result = await fetcher.fetch(urls[next++]);
          if (!result.ok) throw new Error(`${name}: ${result.detail}`);
          bytes += result.body.length;
        }
      }));
      speeds[name].push(bytes / 1e6 / ((performance.now() - started) / 1000));
      await fetcher.close();
    }
  }
  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const h1 = median(speeds['http/1.1']);
  const h2 = median(speeds['http/2']);
  console.log(`${rows} photos, ${(bytes / 1e6).toFixed(0)} MB per round, ${concurrency} requests in flight, ${values.rounds} rounds, loopback TLS, the tool's own fetcher`);
  console.log(`HTTP/1.1 keep-alive: ${h1.toFixed(1)} MB/s (rounds: ${speeds['http/1.1'].map((v) => v.toFixed(1)).join(', ')})`);
  console.log(`HTTP/2 (--http2):    ${h2.toFixed(1)} MB/s (rounds: ${speeds['http/2'].map((v) => v.toFixed(1)).join(', ')}) = ${(h2 / h1).toFixed(2)} x HTTP/1.1`);
} finally {
  server.stdin.end();
  await rm(work, { recursive: true, force: true });
}
