// --http2: HTTP/2 offered to an HTTPS host (ALPN), against node:http2's server on loopback
// with a self-signed certificate the test makes and trusts (NODE_EXTRA_CA_CERTS).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createSecureServer } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PHOTOS } from './support/cdn.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';
import { HAVE_OPENSSL, makeCertificate } from './support/tls.mjs';
import { unlessMissing } from './support/needs.mjs';

describe('--http2', { skip: unlessMissing(HAVE_OPENSSL, 'openssl (to make a certificate)') }, () => {
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  /** @type {import('node:http2').Http2SecureServer} */
  let server;
  /** @type {string[]} */
  const versions = [];
  let origin = '';
  let certPath = '';
  before(async () => {
    work = await tempDir();
    const certificate = await makeCertificate(work.path);
    certPath = certificate.certPath;
    const photo = await readFile(join(PHOTOS, 'aqua.jpg'));
    // allowHTTP1: one server for both protocols, as CDNs do; it notes which one each request used.
    server = createSecureServer({ key: certificate.key, cert: certificate.cert, allowHTTP1: true }, (request, response) => {
      versions.push(request.httpVersion);
      response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length });
      response.end(photo);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
    const address = server.address();
    origin = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(() => resolve(undefined)));
    await work.cleanup();
  });

  /** @param {string} name @param {string[]} flags */
  async function run(name, flags) {
    versions.length = 0;
    const rows = Array.from({ length: 4 }, (_, i) => JSON.stringify({ id: `${name}${i}`, url: `${origin}/aqua.jpg?${name}${i}`, cogvlm_caption: 'c' }));
    const results = join(work.path, `${name}.ndjson`);
    const outcome = await runCli(['--output', join(work.path, name), '--sink', 'null', '--resolution', '64', '--results', results, ...flags], {
      stdin: `${rows.join('\n')}\n`,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: certPath },
    });
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.deepEqual((await readResults(results)).map((line) => line.status), ['saved', 'saved', 'saved', 'saved']);
    return [...versions];
  }

  it('HTTP/1.1 by default; --http2 speaks HTTP/2 to a host that offers it', async () => {
    assert.deepEqual(await run('h1', []), ['1.1', '1.1', '1.1', '1.1']);
    assert.deepEqual(await run('h2', ['--http2']), ['2.0', '2.0', '2.0', '2.0']);
  });
});
