// Proxies and TLS: HTTPS_PROXY / HTTP_PROXY / NO_PROXY and --proxy through a CONNECT proxy on
// loopback that counts what passes; --insecure against a host with a self-signed certificate.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PHOTOS, startTestCdn } from './support/cdn.mjs';
import { startConnectProxy } from './support/connect-proxy.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';
import { HAVE_OPENSSL, makeCertificate } from './support/tls.mjs';
import { unlessMissing } from './support/needs.mjs';


describe('proxies and TLS', () => {
  /** @type {Awaited<ReturnType<typeof startTestCdn>>} */
  let cdn;
  /** @type {Awaited<ReturnType<typeof startConnectProxy>>} */
  let proxy;
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  before(async () => {
    cdn = await startTestCdn();
    proxy = await startConnectProxy();
    work = await tempDir();
  });
  after(async () => {
    await proxy.close();
    await cdn.close();
    await work.cleanup();
  });

  /** @param {string} name @param {string[]} args @param {NodeJS.ProcessEnv} env */
  async function run(name, args, env) {
    const rows = ['aqua.jpg', 'wine.jpg'].map((file, i) => JSON.stringify({ id: `${name}${i}`, url: cdn.url(`/photos/${file}?${name}`), cogvlm_caption: file }));
    const results = join(work.path, `${name}.ndjson`);
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/_proxy$/i.test(key)));
    const outcome = await runCli(['--output', join(work.path, name), '--resolution', '64', '--sink', 'null', '--results', results, ...args], { stdin: `${rows.join('\n')}\n`, env: { ...clean, ...env } });
    assert.equal(outcome.code, 0, outcome.stderr);
    return { ...outcome, results: await readResults(results) };
  }

  const target = () => new URL(cdn.origin).host;

  it('HTTP_PROXY sends every request through the proxy; NO_PROXY exempts a host', async () => {
    const before = proxy.tunnels.get(target()) ?? 0;
    const proxied = await run('env', [], { HTTP_PROXY: proxy.url });
    assert.deepEqual(proxied.results.map((line) => line.status), ['saved', 'saved']);
    assert.ok((proxy.tunnels.get(target()) ?? 0) > before, 'the proxy opened a tunnel to the image host');
    assert.match(proxied.stderr, /fetching through proxy http:\/\/127\.0\.0\.1:\d+\/ \(from the environment; NO_PROXY applies\)/);

    const tunnels = proxy.tunnels.get(target());
    const exempt = await run('no-proxy', [], { http_proxy: proxy.url, NO_PROXY: '127.0.0.1' });
    assert.deepEqual(exempt.results.map((line) => line.status), ['saved', 'saved']);
    assert.equal(proxy.tunnels.get(target()), tunnels, 'NO_PROXY: nothing went through the proxy');
  });

  it('--proxy URL, with the bytes counted at the proxy; a bad --proxy is a usage error', async () => {
    const bytesBefore = proxy.bytes();
    const flagged = await run('flag', ['--proxy', proxy.url], {});
    assert.deepEqual(flagged.results.map((line) => line.status), ['saved', 'saved']);
    const photos = (await readFile(join(PHOTOS, 'aqua.jpg'))).length + (await readFile(join(PHOTOS, 'wine.jpg'))).length;
    assert.ok(proxy.bytes() - bytesBefore >= photos, 'both photos came through the proxy');
    const bad = await runCli(['--output', join(work.path, 'bad'), '--proxy', 'socks5://127.0.0.1:1'], { stdin: '' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --proxy must be an http:\/\/ or https:\/\/ URL/);
  });

  it('a self-signed certificate fails with a hint; --insecure fetches it and says so loudly', { skip: unlessMissing(HAVE_OPENSSL, 'openssl (to make a certificate)') }, async () => {
    const { key, cert } = await makeCertificate(work.path);
    const photo = await readFile(join(PHOTOS, 'aqua.jpg'));
    const server = createServer({ key, cert }, (_request, response) => {
      response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length }).end(photo);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
    try {
      const address = server.address();
      const url = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/aqua.jpg`;
      const stdin = `${JSON.stringify({ id: 't1', url, cogvlm_caption: 'tls' })}\n`;
      const results = join(work.path, 'tls.ndjson');
      const strict = await runCli(['--output', join(work.path, 'tls'), '--sink', 'null', '--retries', '0', '--results', results], { stdin });
      assert.equal(strict.code, 0, strict.stderr);
      const [line] = await readResults(results);
      assert.equal(line?.reason, 'connection_error');
      assert.match(line?.detail ?? '', /self.signed certificate.*--insecure skips certificate checks/i);

      const loose = await runCli(['--output', join(work.path, 'tls-insecure'), '--sink', 'null', '--insecure', '--results', results], { stdin });
      assert.equal(loose.code, 0, loose.stderr);
      assert.equal((await readResults(results))[0]?.status, 'saved');
      assert.match(loose.stderr, /WARNING: --insecure: TLS certificates are not checked/);
    } finally {
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    }
  });
});
