// Several inputs at once (a glob), compressed text (.gz, .zst), and inputs without an id
// column (img2dataset's test files have only URL and TEXT): ids from row positions.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import * as arrow from 'apache-arrow';
import { Table as WasmTable, writeParquet } from 'parquet-wasm';
import { withTestCdn } from './support/cdn.mjs';
import { readResults, runCli } from './support/run.mjs';

/**
 * zstd with the zstd tool when there is one; else one frame of raw blocks (RFC 8878: magic,
 * a window descriptor, 3-byte block headers), which any decoder must read.
 * @param {Buffer} data
 */
function zstd(data) {
  const tool = spawnSync('zstd', ['-q', '-c'], { input: data });
  if (tool.status === 0) return tool.stdout;
  const blocks = [];
  for (let at = 0; at < data.length || at === 0; at += 65536) {
    const chunk = data.subarray(at, at + 65536);
    const last = at + 65536 >= data.length ? 1 : 0;
    const header = (chunk.length << 3) | last; // block type 0: raw
    blocks.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), chunk);
  }
  return Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50]), ...blocks]);
}

describe('inputs', () => {
  const context = withTestCdn();

  it('a Parquet file with only URL and TEXT (as img2dataset writes them): ids are row positions, stable across runs', async () => {
    const { cdn, work } = context;
    const table = new arrow.Table({
      URL: arrow.vectorFromArray(['aqua.jpg', 'wine.jpg', 'storm.jpg'].map((name) => cdn.url(`/photos/${name}?i2d`)), new arrow.Utf8()),
      TEXT: arrow.vectorFromArray(['sea', 'glass', 'sky'], new arrow.Utf8()),
      __index_level_0__: arrow.vectorFromArray([0n, 1n, 2n], new arrow.Int64()), // pandas' index
    });
    const input = join(work.path, 'i2d.parquet');
    await writeFile(input, writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream'))));
    const output = join(work.path, 'i2d');
    const results = join(work.path, 'i2d.ndjson');
    const args = ['--input', input, '--output', output, '--url-column', 'URL', '--caption-column', 'TEXT', '--resolution', '64', '--results', results];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((await readResults(results)).map((line) => [line.id, line.status]).sort(), [['1', 'saved'], ['2', 'saved'], ['3', 'saved']]);
    const again = await runCli(args);
    assert.match(again.stderr, /3 skipped \(already_saved 3\)/, 'the same positions are the same ids on the next run');

    const named = await runCli([...args, '--id-column', 'photo_id']);
    assert.equal(named.code, 2, 'an id column the user named must exist');
    assert.match(named.stderr, /has no column "photo_id" \(--id-column\)/);
  });

  it('a glob of .gz and .zst NDJSON parts is one stream of rows; ids unique across files; a corrupt part stops the run naming it', async () => {
    const { cdn, work } = context;
    const parts = join(work.path, 'parts');
    await mkdir(parts);
    const rows = (/** @type {string[]} */ names) => Buffer.from(names.map((name) => `${JSON.stringify({ url: cdn.url(`/photos/${name}?parts`), cogvlm_caption: name })}\n`).join(''));
    await writeFile(join(parts, 'part-a.ndjson.gz'), gzipSync(rows(['aqua.jpg', 'wine.jpg'])));
    await writeFile(join(parts, 'part-b.ndjson.zst'), zstd(rows(['storm.jpg', 'otters.jpg', 'no-such.jpg'])));
    const output = join(work.path, 'parts-out');
    const results = join(work.path, 'parts.ndjson');
    // No id column at all in NDJSON: --id-column '' says so.
    const run = await runCli(['--input', join(parts, 'part-*'), '--id-column', '', '--output', output, '--resolution', '64', '--results', results]);
    assert.equal(run.code, 0, run.stderr);
    const lines = await readResults(results);
    assert.deepEqual(
      lines.map((line) => [line.source.replace(`${parts}/`, ''), line.index, line.id, line.status]).sort(),
      [
        ['part-a.ndjson.gz', 1, 'part-a-1', 'saved'],
        ['part-a.ndjson.gz', 2, 'part-a-2', 'saved'],
        ['part-b.ndjson.zst', 1, 'part-b-1', 'saved'],
        ['part-b.ndjson.zst', 2, 'part-b-2', 'saved'],
        ['part-b.ndjson.zst', 3, 'part-b-3', 'failed'],
      ],
    );
    assert.match(run.stderr, /failed: http_404: .*part-b\.ndjson\.zst: row 3 \(id part-b-3\)/);

    await writeFile(join(parts, 'part-c.ndjson.gz'), Buffer.concat([gzipSync(rows(['drop.png'])).subarray(0, 20), Buffer.from('not gzip at all')]));
    const broken = await runCli(['--input', join(parts, 'part-c.ndjson.gz'), '--id-column', '', '--output', join(work.path, 'broken')]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^error: cannot read input .*part-c\.ndjson\.gz: .*\n$/m);
    assert.doesNotMatch(broken.stderr, /\n\s+at /, 'no stack trace');

    const nothing = await runCli(['--input', join(parts, 'none-*.csv'), '--output', join(work.path, 'none')]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /matches no file/);
    const ranged = await runCli(['--input', join(parts, 'part-a.ndjson.gz'), join(parts, 'part-b.ndjson.zst'), '--rows', '1-2', '--output', join(work.path, 'ranged')]);
    assert.equal(ranged.code, 2);
    assert.match(ranged.stderr, /--rows reads part of one input/);
  });
});
