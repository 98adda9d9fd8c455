// The soak's last word (bench/soak.mjs): what an output folder holds, checked against the
// rows that went in, with nothing of the pipeline's own code but the sample-folder rule:
// - every good row stored exactly once (the dir sink: its image and caption, in its
//   --subfolders folder; webdataset: its members in exactly one complete shard), with
//   its caption; no failing row stored; no file that is not a stored sample;
// - no temporary file (`.partial-` names) anywhere, the state folder included, and nothing
//   there but the databases;
// - dir: metadata.parquet has a row per image on disk, each naming a file that exists, with
//   that file's width and height (read with sharp); simpletuner-dataloader.json is there;
// - the resume state (read with better-sqlite3) records saved exactly the stored ids, every
//   failing row failed with its reason; the sink's index agrees; `status --output` too.
import { spawnSync } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as arrow from 'apache-arrow';
import Database from 'better-sqlite3';
import { ParquetFile } from 'parquet-wasm';
import sharp from 'sharp';
import tar from 'tar-stream';
import { DirLayout } from '../dist/sinks/dir-layout.js';

/** What the state folder may hold after the last run: the databases and their logs. */
const STATE_FILES = /^(state|dir-index|webdataset-index)\.sqlite(-wal|-shm)?$|^lock\.sqlite$/;
const SAMPLE_FILE = /^(\d+)\.(txt|png|jpg|webp)$/;

/**
 * @param {{ output: string, rows: Array<{ id: string, good: boolean, reason?: string, caption: string }>, sink: string, subfolders: number, cli: string }} setup
 * @returns {Promise<{ problems: string[], figures: Record<string, number | boolean> }>}
 */
export async function verifyOutput(setup) {
  const problems = [];
  const report = (text) => problems.length < 200 && problems.push(text);
  const files = await walk(setup.output);
  const temporary = files.filter((path) => path.includes('.partial-'));
  for (const path of temporary) report(`temporary file left: ${path}`);
  const stateFolder = files.filter((path) => path.startsWith('.pipeline/') && !path.includes('.partial-'));
  const strayState = stateFolder.filter((path) => !STATE_FILES.test(path.slice('.pipeline/'.length)));
  for (const path of strayState) report(`unexpected file in the state folder: ${path}`);

  const stored = setup.sink === 'dir' ? await storedInFolder(setup, files, report) : await storedInShards(setup, files, report);
  const byId = new Map(setup.rows.map((row) => [row.id, row]));
  let lost = 0;
  let duplicated = 0;
  let failingStored = 0;
  let strayFiles = stored.stray;
  for (const row of setup.rows) {
    const copies = stored.copies.get(row.id) ?? 0;
    if (row.good && copies === 0) {
      lost++;
      report(`row ${row.id} (${row.url}) is good but not stored`);
    }
    if (copies > 1) {
      duplicated++;
      report(`row ${row.id} is stored ${copies} times`);
    }
    if (!row.good && copies > 0) {
      failingStored++;
      report(`row ${row.id} (${row.url}) fails for good, yet is stored`);
    }
  }
  for (const id of stored.copies.keys()) {
    if (!byId.has(id)) {
      strayFiles++;
      report(`a sample ${id} that no row has`);
    }
  }

  // The resume state and the sink's index.
  const state = new Database(join(setup.output, '.pipeline', 'state.sqlite'), { readonly: true, fileMustExist: true });
  const samples = new Map(state.prepare('SELECT id, status, reason FROM samples').all().map((row) => [row.id, row]));
  state.close();
  let stateAgrees = true;
  let failingRecorded = 0;
  for (const row of setup.rows) {
    const recorded = samples.get(row.id);
    const onDisk = stored.copies.has(row.id);
    if ((recorded?.status === 'saved') !== onDisk) {
      stateAgrees = false;
      report(`row ${row.id}: the state says ${recorded?.status ?? 'nothing'}, the output ${onDisk ? 'holds it' : 'does not hold it'}`);
    }
    if (!row.good) {
      if (recorded?.status === 'failed' && recorded.reason === row.reason) failingRecorded++;
      else report(`row ${row.id} (${row.url}) should be recorded failed (${row.reason}), the state says ${recorded ? `${recorded.status} ${recorded.reason ?? ''}` : 'nothing'}`);
    }
  }
  const index = new Database(join(setup.output, '.pipeline', `${setup.sink}-index.sqlite`), { readonly: true, fileMustExist: true });
  const indexed = index.prepare('SELECT id, committed FROM samples').all();
  index.close();
  const committed = new Set(indexed.filter((row) => row.committed === 1).map((row) => row.id));
  if (indexed.some((row) => row.committed !== 1)) report(`the ${setup.sink} index holds ${indexed.filter((row) => row.committed !== 1).length} uncommitted sample(s) after a clean end`);
  if (committed.size !== stored.copies.size || [...stored.copies.keys()].some((id) => !committed.has(id))) {
    stateAgrees = false;
    report(`the ${setup.sink} index commits ${committed.size} samples, the output holds ${stored.copies.size}`);
  }

  // What `status --output` says.
  const status = spawnSync(process.execPath, [setup.cli, 'status', '--output', setup.output, '--json'], { encoding: 'utf8' });
  let statusAgrees = false;
  try {
    const said = JSON.parse(status.stdout);
    const failing = setup.rows.filter((row) => !row.good).length;
    statusAgrees = said.saved === stored.copies.size && said.failed === failing && said.pendingRetries === 0 &&
      (setup.sink !== 'dir' || (said.metadata?.stored === stored.copies.size && said.metadata?.metadataRows === stored.copies.size && said.metadata?.current === true));
    if (!statusAgrees) report(`status --output disagrees: ${status.stdout.replace(/\s+/g, ' ')}`);
  } catch {
    report(`status --output failed (exit ${status.status}): ${status.stderr.trim()}`);
  }

  return {
    problems,
    figures: {
      stored: setup.rows.filter((row) => row.good && stored.copies.get(row.id) === 1).length,
      lost,
      duplicated,
      failingStored,
      failingRecorded,
      strayFiles,
      temporaryFiles: temporary.length + strayState.length,
      images: stored.images,
      metadataRows: stored.metadataRows ?? 0,
      sizeMismatches: stored.sizeMismatches,
      shards: stored.shards ?? 0,
      stateAgrees,
      statusAgrees,
    },
  };
}

/**
 * The dir sink's output: samples by id (copies: images), each pair in its folder with its
 * caption, and metadata.parquet against the images.
 */
async function storedInFolder(setup, files, report) {
  const layout = new DirLayout(setup.output, setup.subfolders, 'png');
  const byId = new Map(setup.rows.map((row) => [row.id, row]));
  /** @type {Map<string, string[]>} */
  const images = new Map();
  const captions = new Map();
  let stray = 0;
  for (const path of files) {
    if (path.startsWith('.pipeline/') || path.includes('.partial-')) continue;
    if (path === 'metadata.parquet' || path === 'simpletuner-dataloader.json') continue;
    const slash = path.lastIndexOf('/');
    const folder = slash < 0 ? '' : path.slice(0, slash);
    const match = SAMPLE_FILE.exec(path.slice(slash + 1));
    if (!match) {
      stray++;
      report(`a file that is no sample: ${path}`);
      continue;
    }
    const [, id = '', extension] = match;
    if (folder !== layout.folderOf(id)) {
      stray++;
      report(`${path} is not in its folder (${layout.folderOf(id) || 'the top'})`);
    }
    if (extension === 'txt') captions.set(id, path);
    else images.set(id, [...(images.get(id) ?? []), path]);
  }
  const copies = new Map([...images].map(([id, paths]) => [id, paths.length]));
  for (const [id, path] of captions) {
    if (!images.has(id)) {
      stray++;
      report(`a caption without its image: ${path}`);
      continue;
    }
    const text = await readFile(join(setup.output, path), 'utf8');
    if (byId.has(id) && text !== byId.get(id).caption) report(`${path} does not hold the row's caption`);
  }
  for (const [id, paths] of images) if (!captions.has(id)) report(`an image without its caption: ${paths.join(', ')}`);

  // metadata.parquet: a row per image on disk, with the file's own size.
  let metadataRows = 0;
  let sizeMismatches = 0;
  try {
    const table = arrow.tableFromIPC((await (await ParquetFile.fromFile(await openAsBlob(join(setup.output, 'metadata.parquet')))).read()).intoIPCStream());
    metadataRows = table.numRows;
    const listed = new Set();
    for (const row of table) {
      const { filename, caption, width, height } = row.toJSON();
      if (listed.has(filename)) report(`metadata.parquet lists ${filename} twice`);
      listed.add(filename);
      const id = /(\d+)\.\w+$/.exec(filename)?.[1] ?? '';
      if (!images.get(id)?.includes(filename)) {
        report(`metadata.parquet lists ${filename}, which is not on disk`);
        continue;
      }
      const real = await sharp(join(setup.output, filename)).metadata();
      if (real.width !== width || real.height !== height) {
        sizeMismatches++;
        report(`metadata.parquet says ${filename} is ${width}x${height}, the file is ${real.width}x${real.height}`);
      }
      if (byId.has(id) && caption !== byId.get(id).caption) report(`metadata.parquet has another caption for ${filename}`);
    }
    for (const paths of images.values()) for (const path of paths) if (!listed.has(path)) report(`${path} is on disk but not in metadata.parquet`);
  } catch (error) {
    report(`metadata.parquet cannot be read: ${error.message}`);
  }
  try {
    const config = JSON.parse(await readFile(join(setup.output, 'simpletuner-dataloader.json'), 'utf8'));
    if (config[0]?.instance_data_dir !== resolve(setup.output)) report(`simpletuner-dataloader.json points at ${config[0]?.instance_data_dir}`);
  } catch (error) {
    report(`simpletuner-dataloader.json is missing or unreadable: ${error.message}`);
  }
  return { copies, images: [...images.values()].flat().length, stray, metadataRows, sizeMismatches };
}

/**
 * The webdataset sink's output: complete shards only (a `.tar` and its `_stats.json`), every
 * sample's members (image, caption, json) together, sizes as its json says.
 */
async function storedInShards(setup, files, report) {
  const byId = new Map(setup.rows.map((row) => [row.id, row]));
  const copies = new Map();
  let stray = 0;
  let images = 0;
  let sizeMismatches = 0;
  const tars = files.filter((path) => /^\d{5}\.tar$/.test(path));
  for (const path of files) {
    if (path.startsWith('.pipeline/') || path.includes('.partial-') || tars.includes(path)) continue;
    const stats = /^(\d{5})_stats\.json$/.exec(path);
    if (stats && tars.includes(`${stats[1]}.tar`)) continue;
    stray++;
    report(`a file that is no complete shard: ${path}`);
  }
  for (const path of tars) {
    if (!files.includes(path.replace('.tar', '_stats.json'))) report(`${path} has no stats file`);
    const samples = new Map();
    for (const [name, data] of await readTar(join(setup.output, path))) {
      const dot = name.indexOf('.');
      const key = name.slice(0, dot);
      const member = name.slice(dot + 1);
      const sample = samples.get(key) ?? {};
      if (member in sample) report(`${path}: ${name} twice`);
      sample[member] = data;
      samples.set(key, sample);
    }
    for (const [key, sample] of samples) {
      copies.set(key, (copies.get(key) ?? 0) + 1);
      const image = Object.keys(sample).find((member) => member !== 'txt' && member !== 'json');
      if (!image || !sample.txt || !sample.json) {
        report(`${path}: sample ${key} lacks a member (has ${Object.keys(sample).join(', ')})`);
        continue;
      }
      images++;
      if (byId.has(key) && sample.txt.toString('utf8') !== byId.get(key).caption) report(`${path}: ${key}.txt does not hold the row's caption`);
      const described = JSON.parse(sample.json.toString('utf8'));
      const real = await sharp(sample[image]).metadata();
      if (real.width !== described.width || real.height !== described.height) {
        sizeMismatches++;
        report(`${path}: ${key}.json says ${described.width}x${described.height}, the image is ${real.width}x${real.height}`);
      }
    }
  }
  return { copies, images, stray, sizeMismatches, shards: tars.length };
}

/** A tar's members in order. @param {string} path @returns {Promise<Array<[string, Buffer]>>} */
async function readTar(path) {
  const members = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => {
      members.push([header.name, Buffer.concat(chunks)]);
      next();
    });
  });
  const done = new Promise((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(await readFile(path));
  await done;
  return members;
}

/** Every file under `root`, relative, hidden ones included. @param {string} root */
async function walk(root, prefix = '') {
  const found = [];
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...(await walk(root, path)));
    else found.push(path);
  }
  return found;
}
