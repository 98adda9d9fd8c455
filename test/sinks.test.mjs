// Sinks: the example custom sink, loaded by path as a user would, receives every sample;
// a sink from code; the null sink; a sink that cannot write stops the run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runPipeline, SinkError } from '../dist/index.js';
import { writeNdjsonRows, writeParquetRows } from '../dist/demo/dataset-files.js';
import { startTestCdn } from './support/cdn.mjs';
import { imageInfo } from './support/images.mjs';
import { photoRows } from './support/rows.mjs';
import { outputFiles, runCli, tempDir } from './support/run.mjs';

const EXAMPLE_SINK = new URL('../examples/sinks/manifest-sink.mjs', import.meta.url).pathname;
const PROJECT = new URL('..', import.meta.url).pathname;

/** @type {Awaited<ReturnType<typeof startTestCdn>>} */
let cdn;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
/** @type {Awaited<ReturnType<typeof photoRows>>} */
let rows;

before(async () => {
  cdn = await startTestCdn();
  work = await tempDir();
  rows = await photoRows(cdn.origin);
});
after(async () => {
  await cdn.close();
  await work.cleanup();
});

describe('custom sinks', () => {
  test('the example sink, loaded by relative path, receives every sample', async () => {
    const input = join(work.path, 'rows.parquet');
    await writeParquetRows(input, [...rows, { id: 99, url: cdn.url('/status/404'), cogvlm_caption: 'gone', tags: null, width: 1, height: 1 }]);
    const output = join(work.path, 'manifest');
    const run = await runCli(['--input', input, '--output', output, '--sink', './examples/sinks/manifest-sink.mjs', '--format', 'jpeg'], { cwd: PROJECT });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`manifest-sink: ${rows.length} samples`));

    const manifest = (await readFile(join(output, 'manifest.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(manifest.map((entry) => entry.id).sort(), rows.map((row) => String(row.id)).sort());
    for (const entry of manifest) {
      const bytes = await readFile(join(output, entry.file));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), entry.sha256, entry.file);
      const info = await imageInfo(bytes);
      assert.deepEqual([info.width, info.height, info.format], [entry.width, entry.height, 'jpeg']);
      const row = rows.find((candidate) => String(candidate.id) === entry.id);
      assert.deepEqual([entry.original_width, entry.original_height], [row?.width, row?.height]);
    }
    assert.equal((await readdir(join(output, 'images'))).length, rows.length);
  });

  test('a sink factory passed from code sees each sample with its source row', async () => {
    const input = join(work.path, 'code.ndjson');
    await writeNdjsonRows(input, rows.slice(0, 4));
    const received = [];
    let closed = 0;
    const summary = await runPipeline({
      input: { path: input },
      output: join(work.path, 'code'),
      report: { quiet: true, logEveryMs: 0 },
      sink: () => ({
        async write(sample) {
          received.push(sample);
          return { bytesWritten: 1 };
        },
        async close() {
          closed++;
        },
      }),
    });
    assert.equal(closed, 1);
    assert.equal(summary.saved, 4);
    assert.equal(summary.bytesWritten, 4);
    const first = received.find((sample) => sample.id === '500');
    assert.ok(first);
    assert.equal(first.row.url, rows[0]?.url);
    assert.equal(first.row.id, 500);
    assert.equal(first.caption, rows[0]?.cogvlm_caption);
    assert.deepEqual([first.width, first.height, first.originalWidth, first.originalHeight, first.format, first.extension], [1664, 1024, 2560, 1600, 'png', 'png']);
  });

  test('a module that is not a sink is refused at start (exit 2)', async () => {
    const run = await runCli(['--output', join(work.path, 'nosink'), '--sink', './package.json'], { cwd: PROJECT });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /sink module \.\/package\.json/);
  });

  test('the null sink stores nothing', async () => {
    const input = join(work.path, 'null.ndjson');
    await writeNdjsonRows(input, rows.slice(0, 3));
    const output = join(work.path, 'null');
    const summary = await runPipeline({ input: { path: input }, output, sink: 'null', report: { quiet: true, logEveryMs: 0 } });
    assert.equal(summary.saved, 3);
    assert.deepEqual(await outputFiles(output), []);
  });
});

describe('an output that cannot be written', () => {
  test('a full disk stops the run with a SinkError naming the cause', async () => {
    const input = join(work.path, 'full.ndjson');
    await writeNdjsonRows(input, rows.slice(0, 2));
    const output = join(work.path, 'full');
    await mkdir(output);
    // A sink that fails the way a full disk does.
    await assert.rejects(
      runPipeline({
        input: { path: input },
        output,
        report: { quiet: true, logEveryMs: 0 },
        sink: () => ({
          async write() {
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          },
          async close() {},
        }),
      }),
      (error) => error instanceof SinkError && /no space left on device/.test(error.message),
    );
  });
});

describe('the dir sink after an unclean stop', () => {
  test('files of a sample stored but never recorded (killed between the two) are removed, so the metadata covers the disk', async () => {
    const input = join(work.path, 'orphans.ndjson');
    await writeNdjsonRows(input, rows.slice(0, 3));
    const output = join(work.path, 'orphans');
    const first = await runCli(['--input', input, '--output', output, '--quiet']);
    assert.equal(first.code, 0, first.stderr);
    // What a kill leaves: a sample's caption and image renamed into place, no index row, and
    // the index's note that the metadata no longer covers what is stored.
    await writeFile(join(output, 'orphan.txt'), 'a caption');
    await writeFile(join(output, 'orphan.png'), await readFile(join(output, `${rows[0].id}.png`)));
    const index = new Database(join(output, '.pipeline', 'dir-index.sqlite'));
    index.prepare("UPDATE meta SET value = '0' WHERE key = 'metadata_current'").run();
    index.close();

    const rerun = await runCli(['--input', input, '--output', output]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, /removed 2 file\(s\) of samples an earlier run stored but did not record/);
    assert.deepEqual(await outputFiles(output), rows.slice(0, 3).flatMap((row) => [`${row.id}.png`, `${row.id}.txt`]).sort());
  });
});
