// --layout img2dataset: shards read back the way tools written for img2dataset's output
// read them. Tar members are grouped into samples by webdataset's rule (the name before
// the first dot, consecutive members; webdataset v0.2.107 tariterators.py:25-37, 213-270);
// each sample's .json is checked against the fields and types img2dataset's downloader
// writes (img2dataset 95523bc downloader.py:168-182, 239-258, 338-346); the per-shard
// .parquet, the _stats.json and the Parquet sink's columns likewise (writer.py:55-130,
// logger.py:162-191). Read with parquet-wasm + apache-arrow, tar-stream and sharp (python3
// here has neither webdataset nor pandas/pyarrow).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as arrow from 'apache-arrow';
import Database from 'better-sqlite3';
import { ParquetFile } from 'parquet-wasm';
import sharp from 'sharp';
import tar from 'tar-stream';
import { PHOTOS, PHOTO_FILES, withTestCdn } from './support/cdn.mjs';
import { unlessMissing } from './support/needs.mjs';
import { HAVE_REDIS, startRedis } from './support/redis.mjs';
import { runCli } from './support/run.mjs';

/** img2dataset's own fields after the input columns, in its order (downloader.py:239-258, 326-340). */
const OWN_FIELDS = ['caption', 'url', 'key', 'status', 'error_message', 'width', 'height', 'original_width', 'original_height', 'exif', 'sha256'];
/** Their Arrow types in the per-shard parquet (downloader.py:168-182). */
const OWN_TYPES = ['Utf8', 'Utf8', 'Utf8', 'Utf8', 'Utf8', 'Int32', 'Int32', 'Int32', 'Int32', 'Utf8', 'Utf8'];

/** Every member of a tar file, in order, with its header. @param {string} path */
async function readTar(path) {
  const extract = tar.extract();
  /** @type {Array<{ name: string, mode: number | undefined, uname: string | undefined, data: Buffer }>} */
  const members = [];
  createReadStream(path).pipe(extract);
  for await (const entry of extract) {
    /** @type {Buffer[]} */
    const chunks = [];
    for await (const chunk of entry) chunks.push(/** @type {Buffer} */ (chunk));
    members.push({ name: entry.header.name, mode: entry.header.mode, uname: entry.header.uname, data: Buffer.concat(chunks) });
  }
  return members;
}

/**
 * Samples as webdataset builds them: `base_plus_ext` splits a name at the first dot of its
 * base name, a new sample starts whenever the prefix changes, the suffix (lower-cased) is
 * the field, and a field twice in one sample is an error.
 * @param {Awaited<ReturnType<typeof readTar>>} members
 */
function groupLikeWebDataset(members) {
  /** @type {Array<{ __key__: string, [field: string]: any }>} */
  const samples = [];
  for (const { name, data } of members) {
    const match = /^((?:.*\/|)[^.]+)[.]([^/]*)$/.exec(name);
    if (!match) continue;
    const [, prefix = '', suffix = ''] = match;
    let current = samples.at(-1);
    if (!current || current.__key__ !== prefix) samples.push((current = { __key__: prefix }));
    assert.ok(!(suffix.toLowerCase() in current), `${name}: a duplicate file name in the tar`);
    current[suffix.toLowerCase()] = data;
  }
  return samples;
}

/** A whole Parquet file as an apache-arrow Table, read with parquet-wasm. @param {string} path */
async function readParquet(path) {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  return arrow.tableFromIPC((await file.read()).intoIPCStream());
}

/** @param {arrow.Table} table */
const columnsOf = (table) => table.schema.fields.map((field) => [field.name, String(field.type)]);

/** @param {Buffer} data */
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** The size img2dataset's fields call original: the fetched photo's, after EXIF orientation. @param {string} name */
async function originalSize(name) {
  const { width, height, orientation = 1 } = await sharp(join(PHOTOS, name)).metadata();
  return orientation >= 5 ? [height, width] : [width, height];
}

describe('--layout img2dataset', () => {
  const context = withTestCdn();
  /** @type {Array<{ id: string, url: string, cogvlm_caption: string, title: string, photo: string }>} */
  let rows = [];
  /** @param {string} name @param {number} count */
  const rowsFile = async (name, count) => {
    const path = join(context.work.path, `${name}.ndjson`);
    await writeFile(path, rows.slice(0, count).map(({ photo, ...row }) => `${JSON.stringify(row)}\n`).join(''));
    return path;
  };
  before(() => {
    const photos = PHOTO_FILES.filter((name) => name.endsWith('.jpg'));
    rows = Array.from({ length: 11 }, (_, i) => {
      const photo = photos[i % photos.length];
      // Ids with dots: keys are not ids in this layout, so WebDataset's rule does not mind.
      return { id: `photo.${i}`, url: context.cdn.url(`/photos/${photo}?row=${i}`), cogvlm_caption: `Café ${i} ☕ — "quoted" 🦦`, title: `Title ${i}`, photo };
    });
    // A row whose image is gone: the shards hold only stored samples.
    rows[3] = { ...rows[3], url: context.cdn.url('/status/404') };
  });

  it('webdataset: NNNNN.tar + NNNNN.parquet + NNNNN_stats.json, samples KEY.jpg/json/txt with its fields; a resumed run adds shards with new keys', async () => {
    const output = join(context.work.path, 'wds');
    const args = ['--output', output, '--sink', 'webdataset', '--layout', 'img2dataset', '--format', 'jpeg', '--resolution', '64', '--samples-per-shard', '4', '--keep-columns', 'title', '--quiet'];
    const first = await runCli(['--input', await rowsFile('first', 7), ...args]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /6 saved, 1 failed/);
    // What a kill between putting a shard's .parquet in place and its .tar leaves: without
    // the tar it is no shard, and the next run removes the rest.
    await copyFile(join(output, '00001.parquet'), join(output, '00007.parquet'));
    await copyFile(join(output, '00001_stats.json'), join(output, '00007_stats.json'));
    const second = await runCli(['--input', await rowsFile('all', 11), ...args]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /4 saved, 0 failed, 7 skipped/);

    const files = (await readdir(output)).filter((name) => name !== '.pipeline').sort();
    // 6 samples in 00000 (4) and 00001 (2); the rerun's 4 in 00002.
    assert.deepEqual(files, ['00000.parquet', '00000.tar', '00000_stats.json', '00001.parquet', '00001.tar', '00001_stats.json', '00002.parquet', '00002.tar', '00002_stats.json']);

    const index = new Database(join(output, '.pipeline', 'webdataset-index.sqlite'), { readonly: true });
    const keyOfId = new Map(index.prepare('SELECT id, key FROM samples WHERE committed = 1').all().map((row) => /** @type {{ id: string, key: string }} */ (row)).map(({ id, key }) => [id, key]));
    index.close();

    /** @type {Set<string>} */
    const keys = new Set();
    /** @type {Set<string>} */
    const urls = new Set();
    for (const shard of ['00000', '00001', '00002']) {
      const members = await readTar(join(output, `${shard}.tar`));
      for (const { mode, uname } of members) assert.deepEqual([mode, uname], [0o444, 'bigdata'], 'TarWriter: mode 0o444, owner bigdata');
      const samples = groupLikeWebDataset(members);
      // The members of a sample in TarWriter's sorted order: jpg, json, txt.
      assert.deepEqual(members.map(({ name }) => name.split('.')[1]), samples.flatMap(() => ['jpg', 'json', 'txt']));
      const table = await readParquet(join(output, `${shard}.parquet`));
      assert.deepEqual(columnsOf(table), [['title', 'Utf8'], ...OWN_FIELDS.map((name, i) => [name, OWN_TYPES[i]])]);
      const parquetRows = table.toArray().map((row) => row.toJSON());
      assert.equal(parquetRows.length, samples.length, `${shard}.parquet: a row per sample of ${shard}.tar`);

      for (const [position, sample] of samples.entries()) {
        const key = sample.__key__;
        // Shard and position: 4 samples per shard take ceil(log10(4)) = 1 digit.
        assert.equal(key, `${shard}${position}`);
        assert.ok(!keys.has(key), `${key} once`);
        keys.add(key);
        assert.deepEqual(Object.keys(sample).sort(), ['__key__', 'jpg', 'json', 'txt']);

        const text = sample.json.toString('utf8');
        assert.match(text, /^\{\n {4}"title": "Title \d+",\n {4}"caption": /, 'json.dumps(indent=4)');
        assert.ok(!text.endsWith('\n'), 'no final newline');
        assert.doesNotMatch(text, /[^\x00-\x7f]/, 'ensure_ascii: only ASCII');
        assert.match(text, /"caption": "Caf\\u00e9 \d+ \\u2615 \\u2014 \\"quoted\\" \\ud83e\\udda6"/);
        const meta = JSON.parse(text);
        assert.deepEqual(Object.keys(meta), ['title', ...OWN_FIELDS]);
        const row = rows.find(({ url }) => url === meta.url);
        assert.ok(row, `${key}: its url is a row's`);
        assert.ok(!urls.has(meta.url), `${meta.url} stored once`);
        urls.add(meta.url);
        assert.equal(keyOfId.get(row.id), key, `${row.id}: the index records its key`);
        assert.equal(meta.key, key);
        assert.equal(meta.title, row.title);
        assert.equal(meta.caption, row.cogvlm_caption);
        assert.equal(sample.txt.toString('utf8'), row.cogvlm_caption);
        assert.deepEqual([meta.status, meta.error_message, meta.exif], ['success', null, null]);
        const stored = await sharp(sample.jpg).metadata();
        assert.deepEqual([stored.format, meta.width, meta.height], ['jpeg', stored.width, stored.height]);
        assert.equal(Math.min(meta.width, meta.height), 64);
        assert.deepEqual([meta.original_width, meta.original_height], await originalSize(row.photo));
        // The hash of the file fetched, not of the stored jpg (downloader.py:338-340).
        const original = await readFile(join(PHOTOS, row.photo));
        assert.equal(meta.sha256, sha256(original));
        assert.notEqual(meta.sha256, sha256(sample.jpg));
        assert.deepEqual(parquetRows.find((entry) => entry.key === key), meta, `${shard}.parquet has the .json's fields`);
      }

      const statsText = await readFile(join(output, `${shard}_stats.json`), 'utf8');
      const stats = JSON.parse(statsText);
      assert.deepEqual(Object.keys(stats), ['count', 'successes', 'failed_to_download', 'failed_to_resize', 'duration', 'start_time', 'end_time', 'status_dict']);
      assert.deepEqual([stats.count, stats.successes, stats.failed_to_download, stats.failed_to_resize, stats.status_dict], [samples.length, samples.length, 0, 0, { success: samples.length }]);
      assert.ok(stats.start_time > 1.7e9 && stats.end_time >= stats.start_time, 'unix seconds');
      assert.ok(Math.abs(stats.duration - (stats.end_time - stats.start_time)) < 1e-6);
    }
    const stored = rows.filter(({ url }) => !url.endsWith('/status/404'));
    assert.deepEqual([...urls].sort(), stored.map(({ url }) => url).sort(), 'every stored row once, the failed one nowhere');
    assert.equal(keyOfId.size, stored.length);
  });

  it('parquet: img2dataset output_format=parquet columns, the image in a binary column named jpg', async () => {
    const output = join(context.work.path, 'parquet');
    const run = await runCli(['--input', await rowsFile('parquet', 5), '--output', output, '--sink', 'parquet', '--layout', 'img2dataset', '--format', 'jpeg', '--resolution', '64', '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await readdir(output)).filter((name) => name !== '.pipeline').sort(), ['00000.parquet', '00000_stats.json']);
    const table = await readParquet(join(output, '00000.parquet'));
    assert.deepEqual(columnsOf(table), [...OWN_FIELDS.map((name, i) => [name, OWN_TYPES[i]]), ['jpg', 'Binary']]);
    assert.equal(table.numRows, 4);
    for (const entry of table) {
      const row = entry.toJSON();
      // 1000 samples per shard (the default): 3 digits of position after the shard's 5.
      assert.match(row.key, /^00000\d{3}$/);
      const image = await sharp(row.jpg).metadata();
      assert.deepEqual([image.format, image.width, image.height], ['jpeg', row.width, row.height]);
      assert.equal(row.sha256, sha256(await readFile(join(PHOTOS, rows.find(({ url }) => url === row.url)?.photo ?? ''))));
    }
    assert.deepEqual(table.getChild('key')?.toArray().sort(), ['00000000', '00000001', '00000002', '00000003']);
  });

  it('queue workers: job-named shards whose members follow the layout; every worker must use the same layout', { skip: unlessMissing(HAVE_REDIS, 'redis-server (apt-get install redis-server)') }, async () => {
    const redis = await startRedis();
    try {
      const output = join(context.work.path, 'queue');
      const q = ['--redis', redis.url, '--queue', 'layout'];
      assert.equal((await runCli(['enqueue', ...q, '--input', await rowsFile('queue', 11), '--rows-per-job', '6'])).code, 0);
      const args = ['worker', ...q, '--output', output, '--sink', 'webdataset', '--format', 'jpeg', '--resolution', '64', '--samples-per-shard', '4', '--exit-when-drained', '--quiet'];
      const worker = await runCli([...args, '--layout', 'img2dataset']);
      assert.equal(worker.code, 0, worker.stderr);
      const native = await runCli(args);
      assert.equal(native.code, 2);
      assert.match(native.stderr, /layout "img2dataset" \(this worker: "native"\)/);
      assert.equal((await runCli(['finalize', ...q, '--output', output])).code, 0);

      const files = (await readdir(output)).filter((name) => name !== '.pipeline').sort();
      const tars = files.filter((name) => name.endsWith('.tar'));
      // Rows 1-6 (one 404) and 7-11: shards 00 (4) and 01 (1), then 00 (4) and 01 (1).
      assert.deepEqual(tars, ['rows-000000001-000000006-00.tar', 'rows-000000001-000000006-01.tar', 'rows-000000007-000000011-00.tar', 'rows-000000007-000000011-01.tar']);
      for (const name of tars) for (const suffix of ['.parquet', '_stats.json']) assert.ok(files.includes(name.replace('.tar', suffix)), `${name}: its ${suffix}`);
      const keys = [];
      for (const name of tars) {
        const shard = name.slice(0, -'.tar'.length);
        const samples = groupLikeWebDataset(await readTar(join(output, name)));
        for (const [position, sample] of samples.entries()) {
          assert.equal(sample.__key__, `${shard}${position}`);
          assert.deepEqual(Object.keys(sample).sort(), ['__key__', 'jpg', 'json', 'txt']);
          assert.equal(JSON.parse(sample.json.toString()).key, sample.__key__);
          keys.push(sample.__key__);
        }
        const table = await readParquet(join(output, `${shard}.parquet`));
        assert.deepEqual(table.getChild('key')?.toArray(), samples.map(({ __key__ }) => __key__));
      }
      assert.equal(keys.length, 10);
    } finally {
      await redis.close();
    }
  });

  it('refused at start: the dir sink, --format original, kept columns with its names, a switch of layout on an output', async () => {
    const input = await rowsFile('refusals', 2);
    const refused = async (/** @type {string[]} */ args, /** @type {RegExp} */ message) => {
      const run = await runCli(['--input', input, '--output', join(context.work.path, 'refused'), '--quiet', ...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
    };
    await refused(['--layout', 'img2dataset'], /--layout img2dataset is for the webdataset and parquet sinks/);
    await refused(['--sink', 'webdataset', '--layout', 'img2dataset', '--resize', 'none'], /--layout img2dataset stores every image in one format/);
    await refused(['--sink', 'parquet', '--layout', 'img2dataset', '--keep-columns', 'status'], /--keep-columns status: the metadata has a column of that name/);
    await refused(['--sink', 'webdataset', '--layout', 'tfrecord'], /--layout/);

    const output = join(context.work.path, 'native-first');
    assert.equal((await runCli(['--input', input, '--output', output, '--sink', 'webdataset', '--resolution', '64', '--quiet'])).code, 0);
    const switched = await runCli(['--input', input, '--output', output, '--sink', 'webdataset', '--layout', 'img2dataset', '--format', 'jpeg', '--quiet']);
    assert.equal(switched.code, 2);
    assert.match(switched.stderr, /was written with --layout native; this run asks for img2dataset/);
  });
});
