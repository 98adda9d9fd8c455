// End to end: rows in (NDJSON, CSV, Parquet, stdin), real photos fetched from a CDN on
// 127.0.0.1, images and captions out on disk, read back with sharp.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runPipeline } from '../dist/index.js';
import { writeCsvRows, writeNdjsonRows, writeParquetRows } from '../dist/demo/dataset-files.js';
import { startTestCdn } from './support/cdn.mjs';
import { imageInfo, meanDifference } from './support/images.mjs';
import { photoRows } from './support/rows.mjs';
import { outputFiles, readResults, runCli, tempDir } from './support/run.mjs';

const quiet = { quiet: true, logEveryMs: 0 };
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

/** Reads a whole output folder into { name: bytes }. @param {string} dir */
async function snapshot(dir) {
  const files = {};
  for (const name of await outputFiles(dir)) files[name] = await readFile(join(dir, name));
  return files;
}

describe('the three input formats', () => {
  test('NDJSON, CSV, Parquet and NDJSON on stdin give identical outputs', async () => {
    const inputs = {
      ndjson: join(work.path, 'rows.ndjson'),
      csv: join(work.path, 'rows.csv'),
      parquet: join(work.path, 'rows.parquet'),
    };
    await writeNdjsonRows(inputs.ndjson, rows);
    await writeCsvRows(inputs.csv, rows);
    await writeParquetRows(inputs.parquet, rows, 5); // several row groups

    const outputs = {};
    for (const [format, path] of Object.entries(inputs)) {
      const output = join(work.path, `out-${format}`);
      const summary = await runPipeline({ input: { path }, output, report: quiet });
      assert.equal(summary.saved, rows.length, `${format}: every row saved`);
      assert.equal(summary.failed, 0, `${format}: no failures`);
      outputs[format] = await snapshot(output);
    }
    const stdinOutput = join(work.path, 'out-stdin');
    const cli = await runCli(['--output', stdinOutput, '--quiet'], { stdin: await readFile(inputs.ndjson) });
    assert.equal(cli.code, 0, cli.stderr);
    outputs.stdin = await snapshot(stdinOutput);

    const expectedNames = rows.flatMap((row) => [`${row.id}.png`, `${row.id}.txt`]).sort();
    assert.deepEqual(Object.keys(outputs.ndjson), expectedNames);
    for (const format of ['csv', 'parquet', 'stdin']) {
      assert.deepEqual(Object.keys(outputs[format]), expectedNames, `${format}: same files`);
      for (const name of expectedNames) {
        assert.ok(outputs[format][name].equals(outputs.ndjson[name]), `${format}: ${name} is identical`);
      }
    }

    // Captions: one line, newlines folded, quotes kept; the empty caption falls back to tags.
    const text = (id) => outputs.parquet[`${id}.txt`].toString('utf8');
    assert.equal(text(501), `${rows[1]?.cogvlm_caption?.replace('\n', ' ')}`);
    assert.match(text(501), /It is "very" detailed/);
    assert.doesNotMatch(text(501), /\n/);
    assert.equal(text(502), rows[2]?.tags);
    assert.equal(text(500), rows[0]?.cogvlm_caption);
  });
});

describe('images', () => {
  test('sizes follow the reference rule exactly; output is 8-bit sRGB PNG', async () => {
    const output = join(work.path, 'sizes');
    const input = join(work.path, 'sizes.ndjson');
    await writeNdjsonRows(input, rows);
    await runPipeline({ input: { path: input }, output, report: quiet });
    const aqua = await imageInfo(join(output, '500.png')); // the 2560x1600 original
    assert.deepEqual([aqua.width, aqua.height], [1664, 1024]);
    for (const row of rows) {
      const info = await imageInfo(join(output, `${row.id}.png`));
      const k = 1024 / Math.min(row.width, row.height);
      // Python's round() rounds halves to even; none of these photos lands on a half.
      const expected = [Math.round((row.width * k) / 64) * 64, Math.round((row.height * k) / 64) * 64];
      assert.deepEqual([info.width, info.height], expected, row.url);
      assert.equal(info.format, 'png');
      assert.equal(info.channels, 3);
      assert.equal(info.depth, 'uchar');
      assert.equal(info.space, 'srgb');
    }
  });

  test('an EXIF-rotated photo comes out upright', async () => {
    const output = join(work.path, 'exif');
    const input = join(work.path, 'exif.ndjson');
    await writeNdjsonRows(input, [
      { id: 1, url: cdn.url('/photos/friends.jpg'), cogvlm_caption: 'upright', tags: null, width: 799, height: 1200 },
      { id: 2, url: cdn.url('/fixtures/friends-exif6.jpg'), cogvlm_caption: 'stored sideways', tags: null, width: 1200, height: 799 },
    ]);
    const summary = await runPipeline({ input: { path: input }, output, report: quiet });
    assert.equal(summary.saved, 2);
    const stored = await imageInfo(join(output, '2.png'));
    assert.deepEqual([stored.width, stored.height], [1024, 1536], 'portrait, not landscape');
    assert.equal(stored.orientation, undefined, 'no orientation tag left to apply twice');
    const difference = await meanDifference(join(output, '1.png'), join(output, '2.png'));
    assert.ok(difference < 3, `the rotated photo matches the upright one (mean difference ${difference.toFixed(2)})`);
  });

  test('jpeg and webp output', async () => {
    const input = join(work.path, 'formats.ndjson');
    await writeNdjsonRows(input, rows.slice(0, 3));
    /** @type {Array<['jpeg' | 'webp', string]>} */
    const formats = [['jpeg', 'jpg'], ['webp', 'webp']];
    for (const [format, extension] of formats) {
      const output = join(work.path, `format-${format}`);
      await runPipeline({ input: { path: input }, output, image: { format }, report: quiet });
      const info = await imageInfo(join(output, `500.${extension}`));
      assert.equal(info.format, format);
      assert.deepEqual([info.width, info.height], [1664, 1024]);
    }
  });
});
