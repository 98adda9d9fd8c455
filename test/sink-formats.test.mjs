// What lands on disk, read back with independent readers: parquet-wasm and apache-arrow
// for Parquet, tar-stream for tar shards, sharp for images.
import assert from 'node:assert/strict';
import { openAsBlob } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import sharp from 'sharp';
import { PHOTO_FILES } from './support/cdn.mjs';
import { startCli, waitFor } from './support/child.mjs';
import { runCli } from './support/run.mjs';
import { server, useServerAndFolder, work } from './support/server-and-folder.mjs';
import { readTar } from './support/tar.mjs';

const PHOTOS = PHOTO_FILES;

useServerAndFolder();

/** @param {string} name @param {number} count @param {number} [delayMs] */
async function rowsFile(name, count, delayMs = 0) {
  const rows = Array.from({ length: count }, (_, i) => ({
    id: `${name}${i}`,
    url: `${server.origin}/photo/${delayMs}/${PHOTOS[i % PHOTOS.length]}/${name}-${i}`,
    cogvlm_caption: `A "photo" number ${i}, with commas, quotes and\nnewlines folded.`,
    width: 100 + i,
  }));
  const input = join(work.path, `${name}.ndjson`);
  await writeFile(input, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
  return { rows, input };
}

/** Reads a whole Parquet file with parquet-wasm into an apache-arrow Table. @param {string} path */
async function readParquet(path) {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
  return { table, rowGroups: file.metadata().numRowGroups() };
}

/** Every member of a tar file, with tar-stream. @param {string} path */
describe('the dir sink', () => {
  test('metadata.parquet matches the files, and covers every saved sample once after a resumed run', async () => {
    const { rows, input } = await rowsFile('d', 14);
    const output = join(work.path, 'dir');
    // First run: the first 9 rows; second run: all 14 (5 new, 9 skipped as already saved).
    const firstInput = join(work.path, 'd-first.ndjson');
    await writeFile(firstInput, (await readFile(input, 'utf8')).split('\n').slice(0, 9).join('\n'));
    assert.equal((await runCli(['--input', firstInput, '--output', output, '--quiet'])).code, 0);
    const second = await runCli(['--input', input, '--output', output, '--quiet']);
    assert.match(second.stderr, /5 saved, 0 failed, 9 skipped/);

    const { table } = await readParquet(join(output, 'metadata.parquet'));
    assert.equal(table.numRows, rows.length, 'one row per saved sample');
    assert.equal(String(table.schema.fields.find((field) => field.name === 'filename')?.type), 'Utf8');
    const seen = new Set();
    for (const entry of table) {
      const { filename, caption, width, height, sha256 } = entry.toJSON();
      assert.ok(!seen.has(filename), `${filename} once`);
      seen.add(filename);
      const info = await sharp(join(output, filename)).metadata();
      assert.deepEqual([width, height], [info.width, info.height], `${filename}: stored size`);
      const { createHash } = await import('node:crypto');
      assert.equal(sha256, createHash('sha256').update(await readFile(join(output, filename))).digest('hex'));
      assert.equal(caption, await readFile(join(output, filename.replace(/\.png$/, '.txt')), 'utf8'));
      assert.match(caption, /A "photo" number \d+, with commas, quotes and newlines folded\./);
    }
    assert.deepEqual([...seen].sort(), rows.map((row) => `${row.id}.png`).sort());

    const [loader] = JSON.parse(await readFile(join(output, 'simpletuner-dataloader.json'), 'utf8'));
    assert.equal(loader.metadata_backend, 'parquet');
    assert.deepEqual(
      [loader.parquet.filename_column, loader.parquet.caption_column, loader.parquet.width_column, loader.parquet.height_column, loader.parquet.identifier_includes_extension],
      ['filename', 'caption', 'width', 'height', true],
    );
    assert.equal(loader.parquet.path, join(output, 'metadata.parquet'));
  });
});

describe('the webdataset sink', () => {
  test('tar shards of --samples-per-shard samples, each with image, caption and json, and stats', async () => {
    const { rows, input } = await rowsFile('w', 7);
    const output = join(work.path, 'wds');
    const run = await runCli(['--input', input, '--output', output, '--sink', 'webdataset', '--samples-per-shard', '3', '--format', 'jpeg', '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    const names = (await readdir(output)).filter((name) => name !== '.pipeline').sort();
    assert.deepEqual(names, ['00000.tar', '00000_stats.json', '00001.tar', '00001_stats.json', '00002.tar', '00002_stats.json']);
    const keys = [];
    for (const shard of ['00000', '00001', '00002']) {
      const members = await readTar(join(output, `${shard}.tar`));
      const stats = JSON.parse(await readFile(join(output, `${shard}_stats.json`), 'utf8'));
      assert.equal(members.size, stats.samples * 3);
      for (const [name, data] of members) {
        if (!name.endsWith('.jpg')) continue;
        const key = name.slice(0, -4);
        keys.push(key);
        const meta = JSON.parse(String(members.get(`${key}.json`)));
        const info = await sharp(data).metadata();
        assert.deepEqual([info.format, info.width, info.height], ['jpeg', meta.width, meta.height], name);
        assert.equal(String(members.get(`${key}.txt`)), meta.caption);
        assert.equal(meta.url, rows.find((row) => row.id === key)?.url);
      }
    }
    assert.deepEqual(keys.sort(), rows.map((row) => row.id).sort());
  });

  test('SIGTERM completes the open shard; kill -9 and resume put no sample in two shards', async () => {
    const { rows, input } = await rowsFile('k', 20, 80);
    const output = join(work.path, 'wds-kill');
    const args = ['--input', input, '--output', output, '--sink', 'webdataset', '--samples-per-shard', '4', '--concurrency', '2', '--quiet'];
    const shards = async () => (await readdir(output).catch(() => [])).filter((name) => /^\d{5}\.tar$/.test(name));

    const killed = startCli(args);
    await waitFor(async () => (await shards()).length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 150)); // into the next shard
    killed.child.kill('SIGKILL');
    await killed.exited;

    const stopped = startCli(args);
    await waitFor(async () => (await shards()).length >= 3);
    stopped.child.kill('SIGTERM');
    const { code } = await stopped.exited;
    assert.equal(code, 143);
    const hidden = (await readdir(output)).filter((name) => name.startsWith('.') && name !== '.pipeline');
    assert.deepEqual(hidden, [], 'no unfinished shard left after SIGTERM');
    for (const shard of await shards()) await readTar(join(output, shard)); // every shard reads whole

    assert.equal((await runCli(args)).code, 0);
    const seen = new Map();
    for (const shard of await shards()) {
      for (const name of (await readTar(join(output, shard))).keys()) {
        if (!name.endsWith('.png')) continue;
        assert.ok(!seen.has(name), `${name} is in ${seen.get(name)} and ${shard}`);
        seen.set(name, shard);
      }
    }
    assert.deepEqual([...seen.keys()].sort(), rows.map((row) => `${row.id}.png`).sort(), 'every sample exactly once');
  });
});

describe('the parquet sink', () => {
  test('shards with metadata columns and the image bytes', async () => {
    const { rows, input } = await rowsFile('p', 5);
    const output = join(work.path, 'parquet');
    const run = await runCli(['--input', input, '--output', output, '--sink', 'parquet', '--samples-per-shard', '3', '--format', 'webp', '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    const keys = [];
    for (const shard of ['00000.parquet', '00001.parquet']) {
      const { table } = await readParquet(join(output, shard));
      for (const entry of table) {
        const { key, caption, width, height, image, format, filename } = entry.toJSON();
        keys.push(key);
        const info = await sharp(Buffer.from(image)).metadata();
        assert.deepEqual([info.format, info.width, info.height], ['webp', width, height], key);
        assert.equal(format, 'webp');
        assert.equal(filename, `${key}.webp`);
        assert.match(caption, /A "photo" number/);
      }
    }
    assert.deepEqual(keys.sort(), rows.map((row) => row.id).sort());
  });
});

