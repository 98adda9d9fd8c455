// Workers on one queue (BullMQ on a real redis-server): inputs split into jobs, settings
// they must agree on, duplicates across them, and what they refuse.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { unlessMissing } from './support/needs.mjs';
import { makeRows, readMetadata, startWorker, useQueueFixture } from './support/queue.mjs';
import { HAVE_REDIS } from './support/redis.mjs';
import { readResults, runCli } from './support/run.mjs';
import { writeCsvRows, writeNdjsonRows, writeParquetRows } from '../dist/demo/dataset-files.js';

describe('workers on a queue', { skip: unlessMissing(HAVE_REDIS, 'redis-server (apt-get install redis-server)') }, () => {
  const fixture = useQueueFixture();

  it('--dedupe url,content holds across workers: one job after another, what one worker saved the next one skips', async () => {
    const { redis, server, work } = fixture;
    const queue = 'dedupe';
    const q = ['--redis', redis.url, '--queue', queue];
    // Every image of the counting server has the same bytes. Job 1 (rows 1-10) fetches ten
    // URLs; job 2 (rows 11-20) fetches the same ten again, in the same order.
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: `d${String(i + 1).padStart(2, '0')}`, url: `${server.base}/img/dedupe-${(i % 10) + 1}.png`, cogvlm_caption: `photo ${i + 1}` }));
    const input = join(work.path, 'dedupe.ndjson');
    await writeFile(input, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
    assert.equal((await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '10'])).code, 0);
    const output = join(work.path, 'dedupe-out');
    const args = (/** @type {string} */ name) => [...q, '--output', output, '--resolution', '32', '--dedupe', 'url,content', '--log-every', '0', '--results', join(work.path, `dedupe-${name}.ndjson`)];

    const first = startWorker([...args('a'), '--max-jobs', '1']);
    assert.equal((await first.exited).code, 0);
    const refused = await runCli(['worker', ...q, '--output', output, '--resolution', '32', '--dedupe', 'url']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^error: queue dedupe writes its dataset with dedupe \["url","content"\] \(this worker: \["url"\]\)/);
    const second = startWorker([...args('b'), '--exit-when-drained']);
    assert.equal((await second.exited).code, 0);

    const [jobA, jobB] = [await readResults(join(work.path, 'dedupe-a.ndjson')), await readResults(join(work.path, 'dedupe-b.ndjson'))];
    const saved = jobA.filter((line) => line.status === 'saved');
    assert.equal(saved.length, 1, 'ten rows of the same bytes in one job: one is stored');
    assert.deepEqual(jobA.filter((line) => line.status !== 'saved').map((line) => line.reason), Array(9).fill('duplicate_content'));
    const keptUrl = saved[0]?.url;
    const byReason = (/** @type {string} */ reason) => jobB.filter((line) => line.reason === reason).map((line) => line.url);
    assert.deepEqual(byReason('duplicate_url'), [keptUrl], 'the saved URL is not fetched again by the other worker');
    assert.equal(byReason('duplicate_content').length, 9, 'the rest are fetched, and their bytes found saved');
    assert.equal(server.requests.get(new URL(keptUrl).pathname), 1);
    assert.equal((await runCli(['finalize', ...q, '--output', output])).code, 0);
    assert.deepEqual((await readMetadata(join(output, 'metadata.parquet'))).map(([name]) => name), [`${saved[0]?.id}.png`]);
  });

  it('refuses what cannot work, with one line and no stack trace', async () => {
    const { redis, server, work } = fixture;
    const q = ['--redis', redis.url, '--queue', 'refusals'];
    const output = join(work.path, 'refusals');
    const withInput = await runCli(['worker', ...q, '--output', output, '--input', 'rows.ndjson']);
    assert.equal(withInput.code, 2);
    assert.match(withInput.stderr, /^error: a worker reads its rows from the queue's jobs: --input belongs to enqueue\n$/);

    const noRedis = await runCli(['worker', '--redis', 'redis://127.0.0.1:1', '--queue', 'x', '--output', output]);
    assert.equal(noRedis.code, 2);
    assert.match(noRedis.stderr, /^error: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*\n$/);

    const input = join(work.path, 'refusals.ndjson');
    await writeFile(input, makeRows(server.base, 60).text);
    assert.equal((await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '20'])).code, 0);
    const early = await runCli(['finalize', ...q, '--output', output]);
    assert.equal(early.code, 2, 'no worker has run yet');
    const first = await runCli(['worker', ...q, '--output', output, '--resolution', '32', '--max-jobs', '1', '--log-every', '0']);
    assert.equal(first.code, 0, first.stderr);
    const notDrained = await runCli(['finalize', ...q, '--output', output]);
    assert.equal(notDrained.code, 75);
    assert.match(notDrained.stderr, /^error: queue refusals still has 2 job\(s\) waiting or running/);
    const otherSink = await runCli(['worker', ...q, '--output', output, '--resolution', '32', '--sink', 'webdataset']);
    assert.equal(otherSink.code, 2);
    assert.match(otherSink.stderr, /^error: queue refusals writes its dataset with sink "dir" \(this worker: "webdataset"\)/);
  });

  it('Parquet, CSV and NDJSON inputs split into jobs that each read exactly their rows', async () => {
    const { redis, server, work } = fixture;
    const rows = Array.from({ length: 50 }, (_, i) => ({
      id: 9000 + i,
      url: `${server.base}/img/split-${i}.png`,
      // Captions with commas, quotes and line breaks: CSV records spanning lines.
      cogvlm_caption: i % 3 === 0 ? `a photo, number ${i}\nwith "quotes"` : `photo ${i}`,
      tags: 'tag',
      width: 96,
      height: 64,
    }));
    const expected = rows.map((row) => [`${row.id}.png`, row.cogvlm_caption.replace(/\s*\n\s*/g, ' ')]).sort();
    const inputs = { parquet: join(work.path, 'split.parquet'), csv: join(work.path, 'split.csv'), ndjson: join(work.path, 'split.ndjson') };
    await writeParquetRows(inputs.parquet, rows, 20); // row groups of 20, 20 and 10
    await writeCsvRows(inputs.csv, rows);
    await writeNdjsonRows(inputs.ndjson, rows);
    for (const [format, input] of Object.entries(inputs)) {
      const q = ['--redis', redis.url, '--queue', `split-${format}`];
      const output = join(work.path, `split-${format}`);
      const enqueued = await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '7']);
      assert.equal(enqueued.code, 0, enqueued.stderr);
      // Parquet windows stay inside row groups: 3 + 3 + 2 jobs; text: every 7 records.
      assert.match(enqueued.stdout, /^8 jobs \(8 new\) of 50 rows/, `${format}: ${enqueued.stdout}`);
      const worker = startWorker([...q, '--output', output, '--resolution', '32', '--exit-when-drained', '--log-every', '0']);
      assert.equal((await worker.exited).code, 0);
      assert.equal((await runCli(['finalize', ...q, '--output', output])).code, 0);
      assert.deepEqual((await readMetadata(join(output, 'metadata.parquet'))).sort(), expected, `${format}: every row once, with its own caption`);
    }
  });

  it('TSV and URL lists split into jobs too; workers with --sample keep exactly what a run with it keeps, and must agree on it', async () => {
    const { redis, server, work } = fixture;
    const rows = Array.from({ length: 30 }, (_, i) => ({
      id: String(7000 + i),
      url: `${server.base}/img/tsv-${i}.png`,
      // Tabs, quotes and line breaks inside quoted fields: TSV records spanning lines.
      caption: i % 4 === 0 ? `tab\there, "quoted",\nthen a break ${i}` : `photo ${i}`,
    }));
    const cell = (/** @type {string} */ text) => (/[\t"\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
    const tsv = join(work.path, 'split.tsv');
    await writeFile(tsv, ['id\turl\tcogvlm_caption', ...rows.map((row) => [row.id, row.url, row.caption].map(cell).join('\t'))].join('\n') + '\n');
    const tsvQueue = ['--redis', redis.url, '--queue', 'split-tsv-sample'];
    const enqueued = await runCli(['enqueue', ...tsvQueue, '--input', tsv, '--rows-per-job', '7']);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    assert.match(enqueued.stdout, /^5 jobs \(5 new\) of 30 rows/, 'the jobs hold every row: workers sample them');
    const sampledOutput = join(work.path, 'split-tsv-sample');
    const worker = startWorker([...tsvQueue, '--output', sampledOutput, '--resolution', '32', '--sample', '0.5', '--seed', '3', '--exit-when-drained', '--log-every', '0']);
    assert.equal((await worker.exited).code, 0);
    const otherSeed = await runCli(['worker', ...tsvQueue, '--output', sampledOutput, '--resolution', '32', '--sample', '0.5', '--seed', '4', '--max-jobs', '1']);
    assert.equal(otherSeed.code, 2);
    assert.match(otherSeed.stderr, /writes its dataset with sample \{"fraction":0\.5,"seed":3\} \(this worker: \{"fraction":0\.5,"seed":4\}\)/);
    assert.equal((await runCli(['finalize', ...tsvQueue, '--output', sampledOutput])).code, 0);
    const single = join(work.path, 'tsv-sample-run');
    assert.equal((await runCli(['--input', tsv, '--output', single, '--resolution', '32', '--sample', '0.5', '--seed', '3', '--quiet'])).code, 0);
    const fromWorkers = (await readMetadata(join(sampledOutput, 'metadata.parquet'))).sort();
    assert.ok(fromWorkers.length > 5 && fromWorkers.length < 25, `${fromWorkers.length} of 30 rows kept`);
    assert.deepEqual(fromWorkers, (await readMetadata(join(single, 'metadata.parquet'))).sort());
    const byId = new Map(rows.map((row) => [`${row.id}.png`, row.caption.replace(/\s*\n\s*/g, ' ')]));
    for (const [name, caption] of fromWorkers) assert.equal(caption, byId.get(name), name);

    // A URL list: jobs by lines, comments and blank lines counted; ids are line numbers.
    const txt = join(work.path, 'split.txt');
    const lines = ['# image URLs', ...rows.flatMap((row, i) => (i % 10 === 9 ? [row.url, ''] : [row.url]))];
    await writeFile(txt, `${lines.join('\n')}\n`);
    const txtQueue = ['--redis', redis.url, '--queue', 'split-txt'];
    const txtEnqueued = await runCli(['enqueue', ...txtQueue, '--input', txt, '--rows-per-job', '10']);
    assert.equal(txtEnqueued.code, 0, txtEnqueued.stderr);
    assert.match(txtEnqueued.stdout, /^4 jobs \(4 new\) of 34 rows/);
    const results = join(work.path, 'split-txt.ndjson');
    const txtWorker = startWorker([...txtQueue, '--output', join(work.path, 'split-txt'), '--resolution', '32', '--exit-when-drained', '--log-every', '0', '--results', results]);
    assert.equal((await txtWorker.exited).code, 0);
    // Without --missing-captions keep, a URL list's rows fail no_caption (each once, by its line).
    const urlLines = lines.flatMap((line, i) => (line.startsWith('http') ? [i + 1] : []));
    const outcomes = (await readResults(results)).map((result) => [result.index, result.id, result.reason]).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(outcomes, urlLines.map((line) => [line, String(line), 'no_caption']));
  });
});
