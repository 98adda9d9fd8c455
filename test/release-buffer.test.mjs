// A fetched body's memory is freed as soon as its image is encoded (util/release-buffer.ts),
// which needs the body to be memory of its own, however it arrived.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { pipelineOptionsFrom } from '../dist/cli/run.js';
import { createAgent, fetchOnce } from '../dist/fetch/http.js';
import { resolveOptions } from '../dist/options.js';
import { createImagePool } from '../dist/image/pool.js';
import { imageStage } from '../dist/stages/image.js';
import { PHOTOS } from './support/cdn.mjs';

const optionsFor = (...flags) => resolveOptions(pipelineOptionsFrom([...flags, '--input', 'unused', '--output', 'unused']));

/** Runs one fetched item through the image stage, on the image threads. */
async function encode(body, options) {
  const row = { index: 0, id: 'aqua', url: 'http://127.0.0.1/aqua.jpg', caption: 'a photo', captionSource: /** @type {const} */ ('caption'), columns: {} };
  /** @type {import('../dist/types.js').Item} */
  const fetched = { kind: 'fetched', row, body, attempts: 1, bytesFetched: body.length };
  async function* one() {
    yield fetched;
  }
  const images = createImagePool(options.image);
  try {
    const results = [];
    for await (const item of imageStage(images, options.image.concurrency)(one())) results.push(item);
    return results[0];
  } finally {
    await images.close();
  }
}

test('the image stage moves a fetched body to an image thread, which frees it once its image is encoded, and keeps an original that is stored as is', async () => {
  const photo = await readFile(join(PHOTOS, 'aqua.jpg'));

  const body = Buffer.from(photo.buffer.slice(photo.byteOffset, photo.byteOffset + photo.length));
  const encoded = await encode(body, optionsFor('--format', 'jpeg', '--resolution', '64'));
  assert.equal(encoded.kind, 'encoded');
  assert.equal((await sharp(encoded.image).metadata()).format, 'jpeg');
  assert.equal(body.buffer.byteLength, 0, 'the body was moved away (the image thread frees it)');

  const kept = Buffer.from(photo.buffer.slice(photo.byteOffset, photo.byteOffset + photo.length));
  const original = await encode(kept, optionsFor('--resize', 'none'));
  assert.equal(original.kind, 'encoded');
  assert.equal(original.image.length, photo.length);
  assert.ok(original.image.equals(photo), 'the stored original is intact');

  const broken = Buffer.from(photo.buffer.slice(photo.byteOffset, photo.byteOffset + 4000));
  const failed = await encode(broken, optionsFor('--format', 'jpeg'));
  assert.equal(failed.kind, 'failed');
  assert.equal(broken.buffer.byteLength, 0, 'a body that failed to decode was freed too');
});

test('a small body sent without Content-Length comes back in memory of its own', async (t) => {
  // One small chunk after the headers: undici hands it over as a slice of the socket's read.
  const image = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3366aa' } }).png().toBuffer();
  const server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'image/png' });
    response.end(image);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  t.after(() => server.close());
  const { fetch: fetchOptions } = optionsFor();
  const agent = createAgent(fetchOptions);
  t.after(() => agent.close());

  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  const result = await fetchOnce(`http://127.0.0.1:${port}/small.png`, agent, fetchOptions);
  if (!result.ok) assert.fail(`the fetch failed: ${result.detail}`);
  assert.ok(result.body.equals(image));
  assert.equal(result.body.byteOffset, 0);
  assert.equal(result.body.buffer.byteLength, image.length, 'the body is the whole of its memory');
});
