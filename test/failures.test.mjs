// Bad input and a misbehaving CDN: every bad row is recorded with its reason and a message
// naming it, and never stops or corrupts the rest of the run.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runPipeline } from '../dist/index.js';
import { writeNdjsonRows } from '../dist/demo/dataset-files.js';
import { startTestCdn } from './support/cdn.mjs';
import { outputFiles, readResults, runCli, tempDir } from './support/run.mjs';

/** @type {Awaited<ReturnType<typeof startTestCdn>>} */
let cdn;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;

before(async () => {
  cdn = await startTestCdn();
  work = await tempDir();
});
after(async () => {
  await cdn.close();
  await work.cleanup();
});

const good = ['aqua.jpg', 'drop.png', 'flowers.webp', 'storm.jpg'];

describe('a run with bad rows and bad responses', () => {
  test('records each failure with its reason and saves every other row', async () => {
    const line = (row) => JSON.stringify({ cogvlm_caption: `caption ${row.id}`, ...row });
    const lines = [
      line({ id: 1, url: cdn.url(`/photos/${good[0]}`) }),
      line({ id: 2, url: cdn.url('/status/404') }),
      line({ id: 3, url: cdn.url('/html') }),
      '{"id": 4, "url": "broken json',
      line({ id: 5, url: cdn.url(`/photos/${good[1]}`) }),
      line({ id: 6, url: cdn.url('/fixtures/aqua-truncated.jpg') }),
      line({ id: 7, url: cdn.url(`/cut/${good[0]}`) }),
      line({ id: 8 }),
      line({ id: 9, url: 'ftp://example.com/a.jpg' }),
      line({ url: cdn.url(`/photos/${good[2]}`) }),
      line({ id: '../evil', url: cdn.url(`/photos/${good[2]}`) }),
      line({ id: 'a/b', url: cdn.url(`/photos/${good[2]}`) }),
      line({ id: 'nul\u0000id', url: cdn.url(`/photos/${good[2]}`) }),
      line({ id: '.hidden', url: cdn.url(`/photos/${good[2]}`) }),
      '',
      '[1, 2, 3]',
      line({ id: 10, url: cdn.url(`/photos/${good[2]}`) }),
      line({ id: 11, url: cdn.url(`/photos/${good[3]}`) }),
      line({ id: 12, url: 'not a url' }),
      line({ id: 13, url: cdn.url('/status/500') }),
    ];
    const input = join(work.path, 'bad.ndjson');
    await writeFile(input, `${lines.join('\n')}\n`);
    const output = join(work.path, 'out', 'bad');
    const results = join(work.path, 'bad-results.ndjson');
    const summaryPath = join(work.path, 'bad-summary.json');
    const run = await runCli([
      '--input', input, '--output', output, '--results', results, '--summary', summaryPath,
      '--retries', '1', '--retry-delay', '0.01', '--timeout', '20',
    ]);
    assert.equal(run.code, 0, `row failures do not fail the run\n${run.stderr}`);

    const byLine = new Map((await readResults(results)).map((result) => [result.index, result]));
    const expect = (lineNumber, status, reason) => {
      const result = byLine.get(lineNumber);
      assert.ok(result, `line ${lineNumber} has a result`);
      assert.equal(result.status, status, `line ${lineNumber}: ${JSON.stringify(result)}`);
      assert.equal(result.reason, reason, `line ${lineNumber}: ${JSON.stringify(result)}`);
    };
    expect(1, 'saved', undefined);
    expect(2, 'failed', 'http_404');
    expect(3, 'failed', 'not_image');
    expect(4, 'failed', 'bad_row');
    expect(5, 'saved', undefined);
    expect(6, 'failed', 'decode_error');
    expect(7, 'failed', 'truncated');
    expect(8, 'failed', 'bad_row');
    expect(9, 'failed', 'bad_url');
    expect(10, 'failed', 'bad_row');
    for (const lineNumber of [11, 12, 13, 14]) expect(lineNumber, 'failed', 'unsafe_id');
    expect(16, 'failed', 'bad_row');
    expect(17, 'saved', undefined);
    expect(18, 'saved', undefined);
    expect(19, 'failed', 'bad_url');
    expect(20, 'failed', 'http_500');
    assert.equal(byLine.size, 19, 'one result per non-blank line');

    // Messages name the row.
    assert.equal(byLine.get(4).detail.startsWith('line 4: invalid JSON'), true, byLine.get(4).detail);
    assert.match(byLine.get(8).detail, /row 8 \(id 8\): no url/);
    assert.match(byLine.get(11).detail, /row 11: id "\.\.\/evil" cannot be a file name/);
    assert.match(run.stderr, /failed: http_404: row 2 \(id 2\)/);

    // Requests: permanent failures once, transient ones retried once, bad rows never.
    assert.equal(byLine.get(2).attempts, 1);
    assert.equal(byLine.get(7).attempts, 2);
    assert.equal(byLine.get(20).attempts, 2);
    assert.equal(cdn.requests.get('/status/404'), 1);
    assert.equal(cdn.requests.get('/status/500'), 2);
    assert.equal(byLine.get(9).attempts, 0);

    // Exactly the good rows are on disk, with captions, and nothing else: no temporary
    // files, no caption without its image, nothing written outside the output folder.
    assert.deepEqual(await outputFiles(output), ['1.png', '1.txt', '10.png', '10.txt', '11.png', '11.txt', '5.png', '5.txt']);
    assert.deepEqual(await readdir(join(work.path, 'out')), ['bad']);

    const summary = JSON.parse(await readFile(summaryPath, 'utf8'));
    assert.equal(summary.rows, 19);
    assert.equal(summary.saved, 4);
    assert.equal(summary.failed, 15);
    assert.equal(summary.skipped, 0);
    assert.deepEqual(summary.failures, {
      http_404: 1, not_image: 1, bad_row: 4, decode_error: 1, truncated: 1, bad_url: 2, unsafe_id: 4, http_500: 1,
    });
    assert.ok(summary.bytesFetched > 0 && summary.bytesWritten > 0 && summary.seconds > 0);
    assert.match(run.stderr, /19 rows, 4 saved, 15 failed/);
  });

  test('the byte cap holds with and without Content-Length', async () => {
    const input = join(work.path, 'cap.ndjson');
    await writeNdjsonRows(input, [
      { id: 1, url: cdn.url('/photos/aqua.jpg'), cogvlm_caption: 'declared too large', tags: null, width: 2560, height: 1600 },
      { id: 2, url: cdn.url('/chunked/aqua.jpg'), cogvlm_caption: 'streams too large', tags: null, width: 2560, height: 1600 },
      { id: 3, url: cdn.url('/photos/storm.jpg'), cogvlm_caption: 'small enough', tags: null, width: 1200, height: 800 },
    ]);
    const output = join(work.path, 'cap');
    const results = join(work.path, 'cap-results.ndjson');
    const summary = await runPipeline({
      input: { path: input }, output, fetch: { maxBytes: 100_000 }, report: { resultsPath: results, quiet: true, logEveryMs: 0 },
    });
    assert.deepEqual(summary.failures, { too_large: 2 });
    const byId = new Map((await readResults(results)).map((result) => [result.id, result]));
    assert.match(byId.get('1').detail, /Content-Length 200353 exceeds --max-bytes 100000/);
    assert.match(byId.get('2').detail, /body exceeds --max-bytes 100000/);
    assert.ok(summary.bytesFetched < 200_000, `the chunked body was abandoned early (${summary.bytesFetched} bytes read)`);
    assert.equal(byId.get('3').status, 'saved');
  });

  test('a stalled body is abandoned at the deadline', async () => {
    const input = join(work.path, 'stall.ndjson');
    await writeNdjsonRows(input, [
      { id: 1, url: cdn.url('/stall/aqua.jpg'), cogvlm_caption: 'never finishes', tags: null, width: 2560, height: 1600 },
      { id: 2, url: cdn.url('/photos/storm.jpg'), cogvlm_caption: 'fine', tags: null, width: 1200, height: 800 },
    ]);
    const started = Date.now();
    const summary = await runPipeline({
      input: { path: input }, output: join(work.path, 'stall'), fetch: { timeoutMs: 500, retries: 0 }, report: { quiet: true, logEveryMs: 0 },
    });
    assert.deepEqual(summary.failures, { timeout_total: 1 });
    assert.equal(summary.saved, 1);
    assert.ok(Date.now() - started < 15_000, 'the run did not wait for the stalled body');
  });
});

describe('problems with the input as a whole', () => {
  test('a missing column is an error at start naming it and the columns found (exit 2)', async () => {
    const csv = join(work.path, 'columns.csv');
    await writeFile(csv, 'identifier,link,cogvlm_caption\n1,http://127.0.0.1:1/a.jpg,x\n');
    const output = join(work.path, 'columns');
    const run = await runCli(['--input', csv, '--output', output]);
    assert.equal(run.code, 2, run.stderr);
    // No "id" column is no error (ids become row positions); no url column is.
    assert.match(run.stderr, /no column "url" \(--url-column\); columns found: identifier, link, cogvlm_caption/);

    const renamed = await runCli(['--input', csv, '--output', output, '--id-column', 'identifier', '--url-column', 'link', '--retries', '0']);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.match(renamed.stderr, /1 failed \(connection_error 1\)/);
  });

  test('usage errors exit 2 with a message', async () => {
    const noOutput = await runCli(['--input', 'rows.ndjson']);
    assert.equal(noOutput.code, 2);
    assert.match(noOutput.stderr, /--output/);
    const badNumber = await runCli(['--output', work.path, '--concurrency', 'many']);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--concurrency/);
    const missingFile = await runCli(['--output', work.path, '--input', join(work.path, 'nope.parquet')]);
    assert.equal(missingFile.code, 2);
    assert.match(missingFile.stderr, /cannot read input .*nope\.parquet/);
    const notParquet = join(work.path, 'fake.parquet');
    await writeFile(notParquet, 'id,url\n');
    const fake = await runCli(['--output', work.path, '--input', notParquet]);
    assert.equal(fake.code, 2);
    assert.match(fake.stderr, /cannot read .*fake\.parquet as Parquet/);
  });
});
