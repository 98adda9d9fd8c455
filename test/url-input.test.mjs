// Input read from a URL: Parquet over HTTP range requests (only the footer and the needed
// column chunks of the needed rows cross the wire), NDJSON streamed, and clear errors.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as arrow from 'apache-arrow';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { PHOTO_FILES } from './support/cdn.mjs';
import { startFaultyServer } from './support/faulty-server.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';

/** @type {Awaited<ReturnType<typeof startFaultyServer>>} */
let photos;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
/** @type {Awaited<ReturnType<typeof startFileServer>>} */
let files;
before(async () => {
  photos = await startFaultyServer();
  work = await tempDir();
  files = await startFileServer(work.path);
});
after(async () => {
  await files.close();
  await photos.close();
  await work.cleanup();
});

/**
 * Serves the files of `root` on 127.0.0.1, with byte ranges (as a static file server or an
 * object store does) unless the path starts with /no-ranges/; counts the bytes it sends.
 * @param {string} root
 */
async function startFileServer(root) {
  const served = { bytes: 0, requests: 0 };
  const server = createServer(async (request, response) => {
    served.requests++;
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const ranges = !url.pathname.startsWith('/no-ranges/');
    const name = url.pathname.split('/').pop() ?? '';
    const body = await readFile(join(root, name)).catch(() => undefined);
    if (!body || !/^[\w.-]+$/.test(name)) {
      response.writeHead(404).end('not found');
      return;
    }
    const range = ranges ? /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '') : null;
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      const part = body.subarray(start, end + 1);
      served.bytes += part.length;
      response.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': part.length, 'accept-ranges': 'bytes' }).end(part);
      return;
    }
    served.bytes += body.length;
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return { origin: `http://127.0.0.1:${port}`, served, close: () => new Promise((resolve) => server.close(() => resolve(undefined))) };
}

/** Rows shaped like the dataset, plus a wide column the pipeline never reads (as the real file has). @param {number} count */
function datasetRows(count) {
  return Array.from({ length: count }, (_, i) => ({
    id: 100000 + i,
    url: `${photos.origin}/photo/0/${PHOTO_FILES[i % PHOTO_FILES.length]}/u${i}`,
    cogvlm_caption: `photo number ${i}`,
    tags: 'a, b',
    width: 640,
    height: 480,
    description: randomBytes(1200).toString('base64'),
  }));
}

describe('--input URL', () => {
  test('Parquet over HTTP: --rows reads only what it needs, far less than the file', async (t) => {
    const rows = datasetRows(3000);
    const table = new arrow.Table({
      id: arrow.vectorFromArray(rows.map((row) => BigInt(row.id)), new arrow.Int64()),
      url: arrow.vectorFromArray(rows.map((row) => row.url), new arrow.Utf8()),
      cogvlm_caption: arrow.vectorFromArray(rows.map((row) => row.cogvlm_caption), new arrow.Utf8()),
      tags: arrow.vectorFromArray(rows.map((row) => row.tags), new arrow.Utf8()),
      width: arrow.vectorFromArray(rows.map((row) => row.width), new arrow.Int32()),
      height: arrow.vectorFromArray(rows.map((row) => row.height), new arrow.Int32()),
      description: arrow.vectorFromArray(rows.map((row) => row.description), new arrow.Utf8()),
    });
    const properties = new WriterPropertiesBuilder().setCompression(Compression.SNAPPY).setMaxRowGroupSize(500).build();
    const parquet = writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream')), properties);
    await writeFile(join(work.path, 'bucket.parquet'), parquet);

    const results = join(work.path, 'url-results.ndjson');
    const before = files.served.bytes;
    const run = await runCli([
      '--input', `${files.origin}/data/bucket.parquet?signature=abc`, '--rows', '1201-1240',
      '--output', join(work.path, 'url-out'), '--resolution', '64', '--format', 'jpeg', '--results', results, '--quiet',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const outcomes = await readResults(results);
    assert.deepEqual(outcomes.map((result) => [result.index, result.id, result.status]).sort((a, b) => Number(a[0]) - Number(b[0])), rows.slice(1200, 1240).map((row, i) => [1201 + i, String(row.id), 'saved']));
    const read = files.served.bytes - before;
    t.diagnostic(`read ${read} bytes of a ${parquet.length}-byte file for 40 of 3000 rows`);
    assert.ok(read < parquet.length / 20, `read ${read} bytes of a ${parquet.length}-byte file for 40 of 3000 rows`);
  });

  test('NDJSON over HTTP, with --rows', async () => {
    const rows = datasetRows(6).map(({ description: _unused, ...row }) => row);
    await writeFile(join(work.path, 'rows.ndjson'), rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
    const results = join(work.path, 'ndjson-results.ndjson');
    const run = await runCli(['--input', `${files.origin}/rows.ndjson`, '--rows', '3-4', '--output', join(work.path, 'ndjson-out'), '--resolution', '64', '--results', results, '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await readResults(results)).map((result) => result.index).sort(), [3, 4]);
  });

  test('a URL that cannot be read is a usage error naming it, before any image is fetched', async () => {
    const requestsBefore = photos.totalRequests();
    const missing = await runCli(['--input', `${files.origin}/nope.parquet`, '--output', join(work.path, 'missing')]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /^error: cannot read input http:\/\/127\.0\.0\.1:\d+\/nope\.parquet: HTTP 404$/m);
    const noRanges = await runCli(['--input', `${files.origin}/no-ranges/bucket.parquet`, '--output', join(work.path, 'no-ranges')]);
    assert.equal(noRanges.code, 2, noRanges.stderr);
    assert.match(noRanges.stderr, /^error: .*bucket\.parquet does not answer range requests \(HTTP 200\).*download it/m);
    const text = await runCli(['--input', `${files.origin}/gone.ndjson`, '--output', join(work.path, 'gone')]);
    assert.equal(text.code, 2, text.stderr);
    assert.match(text.stderr, /^error: cannot read input http:\/\/127\.0\.0\.1:\d+\/gone\.ndjson: HTTP 404$/m);
    const down = await runCli(['--input', 'http://127.0.0.1:9/rows.ndjson', '--output', join(work.path, 'down'), '--retries', '0']);
    assert.equal(down.code, 2, down.stderr);
    assert.match(down.stderr, /^error: cannot read input http:\/\/127\.0\.0\.1:9\/rows\.ndjson: .*ECONNREFUSED/m);
    assert.equal(photos.totalRequests(), requestsBefore);
  });
});
