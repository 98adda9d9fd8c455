#!/usr/bin/env node
// HTTP/2 (--http2) against HTTP/1.1 keep-alive, over loopback TLS (a self-signed
// certificate made here, trusted through NODE_EXTRA_CA_CERTS), from node:http2's server
// in a process of its own serving the bench's photos with both protocols. Each run fetches
// the same rows and keeps the bytes as they are (--resize none --format original
// --sink null), so the transport is most of the work. Rounds alternate; medians.
//
//   npm run build && node bench/http2.mjs [--rows 300] [--rounds 3] [--concurrency 16]
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeCertificate } from '../test/support/tls.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({ options: { rows: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '16' } } });
const folder = join(ROOT, '.bench-cache/photos');
const files = (await readdir(folder).catch(() => [])).filter((name) => name.endsWith('.jpg'));
const photos = files.length > 0 ? { folder, files } : { folder: join(ROOT, 'examples/photos'), files: (await readdir(join(ROOT, 'examples/photos'))).filter((name) => name.endsWith('.jpg')) };
const work = await mkdtemp(join(tmpdir(), 'pcp-h2-'));
const { certPath } = await makeCertificate(work);
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
  const input = join(work, 'rows.ndjson');
  await writeFile(input, Array.from({ length: rows }, (_, i) => `${JSON.stringify({ id: `r${i}`, url: `https://127.0.0.1:${port}/${photos.files[i % photos.files.length]}?${i}`, cogvlm_caption: 'c' })}\n`).join(''));
  /** @type {Record<string, number[]>} */
  const speeds = { 'http/1.1': [], 'http/2': [] };
  let bytes = 0;
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, flags] of [['http/1.1', []], ['http/2', ['--http2']]]) {
      const summaryPath = join(work, 'summary.json');
      const started = performance.now();
      const code = await run(['--input', input, '--output', join(work, `out-${round}-${name.replace('/', '')}`), '--sink', 'null', '--resize', 'none', '--format', 'original', '--no-resume', '--concurrency', values.concurrency, '--quiet', '--summary', summaryPath, ...flags]);
      const seconds = (performance.now() - started) / 1000;
      const summary = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(summaryPath, 'utf8')));
      if (code !== 0 || summary.saved !== rows) throw new Error(`${name}: exit ${code}, ${summary.saved} of ${rows} saved`);
      bytes = summary.bytesFetched;
      speeds[name].push(bytes / 1e6 / seconds);
    }
  }
  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const h1 = median(speeds['http/1.1']);
  const h2 = median(speeds['http/2']);
  console.log(`${rows} photos, ${(bytes / 1e6).toFixed(0)} MB per run, concurrency ${values.concurrency}, ${values.rounds} rounds, loopback TLS`);
  console.log(`HTTP/1.1 keep-alive: ${h1.toFixed(1)} MB/s (runs: ${speeds['http/1.1'].map((v) => v.toFixed(1)).join(', ')})`);
  console.log(`HTTP/2 (--http2):    ${h2.toFixed(1)} MB/s (runs: ${speeds['http/2'].map((v) => v.toFixed(1)).join(', ')}) = ${(h2 / h1).toFixed(2)} x HTTP/1.1`);
} finally {
  server.stdin.end();
  await rm(work, { recursive: true, force: true });
}

/** @param {string[]} args */
function run(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist/pipeline.js'), ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_EXTRA_CA_CERTS: certPath } });
    child.on('close', (code) => resolve(code));
  });
}
