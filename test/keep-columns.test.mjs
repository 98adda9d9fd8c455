// --keep-columns: input columns carried into metadata.parquet, the WebDataset .json and
// the Parquet shards; a Parquet input's columns keep their Arrow types.
import assert from 'node:assert/strict';
import { createReadStream, openAsBlob } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as arrow from 'apache-arrow';
import { Table as WasmTable, writeParquet } from 'parquet-wasm';
import tar from 'tar-stream';
import { withTestCdn } from './support/cdn.mjs';
import { runCli } from './support/run.mjs';

/** @param {string} path */
async function readTable(path) {
  const { ParquetFile } = await import('parquet-wasm');
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  return arrow.tableFromIPC((await file.read()).intoIPCStream());
}

describe('--keep-columns', () => {
  const context = withTestCdn();
  let input = '';
  before(async () => {
    const { cdn, work } = context;
    const names = ['aqua.jpg', 'wine.jpg', 'storm.jpg'];
    const table = new arrow.Table({
      id: arrow.vectorFromArray([1n, 2n, 3n], new arrow.Int64()),
      url: arrow.vectorFromArray(names.map((name) => cdn.url(`/photos/${name}`)), new arrow.Utf8()),
      cogvlm_caption: arrow.vectorFromArray(['a', 'b', 'c'], new arrow.Utf8()),
      title: arrow.vectorFromArray(['Aqua', null, 'Storm'], new arrow.Utf8()),
      likes: arrow.vectorFromArray([10n, 9007199254740993n, null], new arrow.Int64()),
      score: arrow.vectorFromArray([0.5, 1.25, -2], new arrow.Float64()),
      nsfw: arrow.vectorFromArray([false, true, null], new arrow.Bool()),
      keywords: arrow.vectorFromArray([['sea', 'blue'], [], null], new arrow.List(new arrow.Field('item', new arrow.Utf8(), true))),
    });
    input = join(work.path, 'extra.parquet');
    await writeFile(input, writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream'))));
  });

  it('Parquet in, the same Arrow types out, in metadata.parquet and the Parquet shards', async () => {
    const { cdn, work } = context;
    const output = join(work.path, 'dir');
    const run = await runCli(['--input', input, '--output', output, '--resolution', '64', '--keep-columns', 'title,likes,score,nsfw,keywords']);
    assert.equal(run.code, 0, run.stderr);
    for (const path of [join(output, 'metadata.parquet')]) {
      const table = await readTable(path);
      const types = Object.fromEntries(['title', 'likes', 'score', 'nsfw', 'keywords'].map((name) => [name, String(table.schema.fields.find((field) => field.name === name)?.type)]));
      assert.deepEqual(types, { title: 'Utf8', likes: 'Int64', score: 'Float64', nsfw: 'Bool', keywords: 'List<Utf8>' });
      const rows = table.toArray().map((row) => row.toJSON()).sort((a, b) => a.filename.localeCompare(b.filename));
      assert.deepEqual(rows.map((row) => [row.filename, row.title, row.likes, row.score, row.nsfw, row.keywords && [...row.keywords]]), [
        ['1.png', 'Aqua', 10n, 0.5, false, ['sea', 'blue']],
        ['2.png', null, 9007199254740993n, 1.25, true, []],
        ['3.png', 'Storm', null, -2, null, null],
      ]);
    }
    const shards = join(work.path, 'shards');
    const sharded = await runCli(['--input', input, '--output', shards, '--resolution', '64', '--sink', 'parquet', '--keep-columns', 'all']);
    assert.equal(sharded.code, 0, sharded.stderr);
    const table = await readTable(join(shards, '00000.parquet'));
    const names = table.schema.fields.map((field) => field.name);
    for (const name of ['id', 'cogvlm_caption', 'title', 'likes', 'score', 'nsfw', 'keywords']) assert.ok(names.includes(name), `${name} kept by all`);
    assert.equal(String(table.schema.fields.find((field) => field.name === 'likes')?.type), 'Int64');
  });

  it('NDJSON and the WebDataset .json; unknown or clashing names are refused at start', async () => {
    const { cdn, work } = context;
    const ndjson = join(work.path, 'extra.ndjson');
    await writeFile(ndjson, `${JSON.stringify({ id: 'n1', url: cdn.url('/photos/drop.png'), cogvlm_caption: 'd', title: 'Drop', likes: 3 })}\n`);
    const output = join(work.path, 'wds');
    const run = await runCli(['--input', ndjson, '--output', output, '--resolution', '64', '--sink', 'webdataset', '--keep-columns', 'title,likes']);
    assert.equal(run.code, 0, run.stderr);
    const extract = tar.extract();
    createReadStream(join(output, '00000.tar')).pipe(extract);
    let json;
    for await (const entry of extract) {
      /** @type {Buffer[]} */
      const chunks = [];
      for await (const chunk of entry) chunks.push(/** @type {Buffer} */ (chunk));
      if (entry.header.name.endsWith('.json')) json = JSON.parse(Buffer.concat(chunks).toString());
    }
    assert.equal(json.title, 'Drop');
    assert.equal(json.likes, 3);
    assert.equal(json.extra, undefined);

    const dir = join(work.path, 'ndjson-dir');
    assert.equal((await runCli(['--input', ndjson, '--output', dir, '--resolution', '64', '--keep-columns', 'title,likes'])).code, 0);
    const rows = (await readTable(join(dir, 'metadata.parquet'))).toArray().map((row) => row.toJSON());
    assert.deepEqual([rows[0].title, rows[0].likes], ['Drop', '3'], 'NDJSON values that are not text are kept as JSON text');

    const missing = await runCli(['--input', input, '--output', join(work.path, 'x'), '--keep-columns', 'nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: .*extra\.parquet has no column "nope" \(--keep-columns\)/);
    const clash = await runCli(['--input', input, '--output', join(work.path, 'y'), '--keep-columns', 'width']);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /--keep-columns width: the metadata has a column of that name already/);
    const all = await runCli(['--input', ndjson, '--output', join(work.path, 'z'), '--keep-columns', 'all']);
    assert.equal(all.code, 2);
    assert.match(all.stderr, /--keep-columns all needs a Parquet input/);
  });
});
