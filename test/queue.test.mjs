// Many workers on one queue (BullMQ on a real redis-server), sharing one output folder.
import assert from 'node:assert/strict';
import { createReadStream, openAsBlob } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as arrow from 'apache-arrow';
import { Queue } from 'bullmq';
import { ParquetFile } from 'parquet-wasm';
import tar from 'tar-stream';
import { CLI, readResults, runCli, settled, tempDir } from './support/run.mjs';
import { startCountingServer } from './support/counting-server.mjs';
import { HAVE_REDIS, startRedis } from './support/redis.mjs';
import { loadLikeSimpleTuner } from './support/simpletuner.mjs';
import { writeCsvRows, writeNdjsonRows, writeParquetRows } from '../dist/demo/dataset-files.js';
import { spawn } from 'node:child_process';
import { unlessMissing } from './support/needs.mjs';

// Jobs are locked for 5 s (--job-lock): long enough that a live worker on a busy 2-core
// machine always renews its lock in time (only the killed one loses its job), short enough
// that the dead worker's job comes back within seconds.
//
// A worker is started with the process settings already given, as docs/reference.md's cron and
// systemd lines do, so it is one process: the pid a test kills is the one doing the work.

/** @param {string[]} args */
function startWorker(args) {
  const start = settled(['worker', ...args]);
  const child = spawn(process.execPath, [...start.nodeFlags, CLI, 'worker', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: start.env });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>} */
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}

/** @param {() => Promise<boolean> | boolean} check */
async function waitFor(check, ms = 60_000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A metadata.parquet's rows as [filename, caption] pairs, in order. @param {string} path */
async function readMetadata(path) {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
  const names = /** @type {string[]} */ (table.getChild('filename')?.toArray() ?? []);
  const captions = /** @type {string[]} */ (table.getChild('caption')?.toArray() ?? []);
  return names.map((name, i) => [name, captions[i]]);
}

/** The keys (sample ids) in a WebDataset tar. @param {string} path */
async function tarKeys(path) {
  const extract = tar.extract();
  createReadStream(path).pipe(extract);
  const keys = new Set();
  for await (const entry of extract) {
    keys.add(entry.header.name.split('.')[0]);
    entry.resume();
  }
  return [...keys];
}

/**
 * Rows of the test input: good ones, every 25th a 404, and a few broken lines.
 * @param {string} base @param {number} count
 */
function makeRows(base, count) {
  const lines = [];
  const good = [];
  const missing = [];
  const broken = [];
  for (let i = 1; i <= count; i++) {
    if (i % 97 === 0) {
      broken.push(i);
      lines.push('{"id": "broken", "url": ');
      continue;
    }
    const id = `p${String(i).padStart(4, '0')}`;
    const url = i % 25 === 0 ? `${base}/missing/${id}.png` : `${base}/img/${id}.png`;
    (i % 25 === 0 ? missing : good).push({ id, line: i, path: new URL(url).pathname });
    lines.push(JSON.stringify({ id, url, cogvlm_caption: `photo ${id}` }));
  }
  return { text: `${lines.join('\n')}\n`, good, missing, broken };
}

describe('workers on a queue', { skip: unlessMissing(HAVE_REDIS, 'redis-server (apt-get install redis-server)') }, () => {
  /** @type {Awaited<ReturnType<typeof startRedis>>} */
  let redis;
  /** @type {Awaited<ReturnType<typeof startCountingServer>>} */
  let server;
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  before(async () => {
    redis = await startRedis();
    server = await startCountingServer({ delayMs: 25 });
    work = await tempDir();
  });
  after(async () => {
    await server.close();
    await redis.close();
    await work.cleanup();
  });

  it('three workers, one killed mid-job and replaced: every row once, nothing fetched twice that was stored, the host cap held by all together', async () => {
    const queue = 'kill-one';
    const input = join(work.path, 'rows.ndjson');
    const rows = makeRows(server.base, 640);
    await writeFile(input, rows.text);
    const output = join(work.path, 'shared');
    const q = ['--redis', redis.url, '--queue', queue];

    const first = await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '50']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^13 jobs \(13 new\) of 640 rows/);
    const again = await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '50']);
    assert.match(again.stdout, /^13 jobs \(0 new\)/, 'enqueueing the same input again adds nothing');
    const other = await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '40']);
    assert.equal(other.code, 2, 'another split of the input would overlap the first');

    const PER_HOST = 4;
    const workerArgs = (name) => [...q, '--output', output, '--resolution', '32', '--per-host-concurrency', String(PER_HOST), '--concurrency', '8',
      '--job-lock', '5', '--exit-when-drained', '--log-every', '0', '--results', join(work.path, `results-${name}.ndjson`)];
    const workers = ['a', 'b', 'c'].map((name) => startWorker(workerArgs(name)));
    const victim = workers[0];

    // Kill the first worker with SIGKILL while it holds a job, a third of the way in.
    const client = redis.client();
    /** @type {string} */
    let killedJob = '';
    try {
      await waitFor(async () => {
        const saved = Number((await client.hget(`pcp:${queue}:counts`, 'saved')) ?? 0);
        const beat = await client.hget(`pcp:${queue}:workers`, `${(await import('node:os')).hostname()}:${victim.child.pid}`);
        killedJob = beat ? JSON.parse(beat).job ?? '' : '';
        return saved >= 150 && killedJob !== '';
      });
    } finally {
      client.disconnect();
    }
    victim.child.kill('SIGKILL');
    const killed = await victim.exited;
    assert.equal(killed.signal, 'SIGKILL');
    const replacement = startWorker(workerArgs('d'));

    for (const worker of [...workers.slice(1), replacement]) {
      const { code, stderr } = await worker.exited;
      assert.equal(code, 0, stderr);
    }
    const finalized = await runCli(['finalize', ...q, '--output', output]);
    assert.equal(finalized.code, 0, finalized.stderr);

    // The dataset: every good row once, as SimpleTuner reads it.
    const goodIds = rows.good.map(({ id }) => id).sort();
    const images = (await readdir(output)).filter((name) => name.endsWith('.png')).sort();
    assert.deepEqual(images, goodIds.map((id) => `${id}.png`), 'one image per good row, nothing else');
    assert.deepEqual((await readdir(output)).filter((name) => name.startsWith('.') && name !== '.pipeline'), [], 'no temporary file left');
    const filenames = (await readMetadata(join(output, 'metadata.parquet'))).map(([name]) => name);
    assert.deepEqual([...filenames].sort(), images, 'metadata.parquet has one row per image');
    const { samples, skipped } = await loadLikeSimpleTuner(join(output, 'simpletuner-dataloader.json'));
    assert.equal(samples.size, goodIds.length, 'SimpleTuner trains on every image');
    assert.deepEqual(skipped, { metadata_missing: [], too_small: [], missing_caption: [] });

    // Every bad row failed with its reason.
    const status = await runCli(['status', ...q, '--json']);
    const report = JSON.parse(status.stdout);
    assert.equal(report.samples.saved, goodIds.length);
    assert.deepEqual(report.samples.failures, { http_404: rows.missing.length });
    assert.deepEqual([report.jobs.waiting, report.jobs.active, report.jobs.completed, report.jobs.failed], [0, 0, 13, 0]);
    // The report of the shared state counts what the workers recorded, and shows the shared folder's images.
    const page = join(work.path, 'kill-one-report.html');
    const reported = await runCli(['report', ...q, '--output', output, '--report', page, '--thumbnails', '10']);
    assert.equal(reported.code, 0, reported.stderr);
    const rowsWithIds = goodIds.length + rows.missing.length;
    assert.match(reported.stdout, new RegExp(`^wrote ${page}: ${rowsWithIds} rows, ${goodIds.length} saved, ${rows.missing.length} failed, 0 skipped; 10 thumbnails`));
    const results = (await Promise.all(['a', 'b', 'c', 'd'].map((name) => readResults(join(work.path, `results-${name}.ndjson`)).catch(() => [])))).flat();
    for (const line of rows.broken) {
      assert.ok(results.some((result) => result.index === line && result.status === 'failed' && result.reason === 'bad_row'), `line ${line} failed as bad_row`);
    }
    for (const { line } of rows.missing) {
      assert.ok(results.some((result) => result.index === line && result.status === 'failed' && result.reason === 'http_404'), `line ${line} failed as http_404`);
    }

    // The host saw each sample once, except the rows of the killed worker's job whose
    // requests were under way (fetched, not yet recorded): asked again once at most.
    const [, firstRow, lastRow] = (/^rows-(\d+)-(\d+)$/.exec(killedJob) ?? []).map(Number);
    for (const { line, path } of [...rows.good, ...rows.missing]) {
      const count = server.requests.get(path) ?? 0;
      const inKilledJob = line >= firstRow && line <= lastRow;
      assert.ok(count === 1 || (inKilledJob && count === 2), `${path} (line ${line}) was requested ${count} times`);
    }
    assert.ok(server.maxInFlight() <= PER_HOST, `at most ${PER_HOST} requests in flight to the host from all workers, saw ${server.maxInFlight()}`);
    assert.equal(server.maxInFlight(), PER_HOST, 'and the workers did use all of it');

    // BullMQ's stalled-job check handed the dead worker's job on.
    const connection = redis.client();
    const bull = new Queue(queue, { connection });
    try {
      const job = await bull.getJob(killedJob);
      assert.ok(job && job.stalledCounter >= 1, `${killedJob} was recovered from the dead worker (stalled ${job?.stalledCounter} times)`);
    } finally {
      await bull.close();
      connection.disconnect();
    }
  });

  it('SIGTERM hands the job in hand back within --grace (exit 143); a worker rides out Redis going away', async () => {
    const queue = 'stop-and-outage';
    const slow = await startCountingServer({ delayMs: 150 });
    try {
      const input = join(work.path, 'slow.ndjson');
      const rows = makeRows(slow.base, 120);
      await writeFile(input, rows.text);
      const output = join(work.path, 'slow-out');
      const q = ['--redis', redis.url, '--queue', queue];
      assert.equal((await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '30'])).code, 0);
      const args = [...q, '--output', output, '--resolution', '32', '--per-host-concurrency', '2', '--job-lock', '10', '--log-every', '0'];

      const first = startWorker([...args, '--grace', '5']);
      const client = redis.client();
      try {
        await waitFor(async () => Number((await client.hget(`pcp:${queue}:counts`, 'saved')) ?? 0) >= 5);
      } finally {
        client.disconnect();
      }
      first.child.kill('SIGTERM');
      const stopped = await first.exited;
      assert.equal(stopped.code, 143, stopped.stderr);
      assert.match(stopped.stderr, /job rows-000000001-000000030: handed back to the queue/);
      const between = JSON.parse((await runCli(['status', ...q, '--json'])).stdout);
      assert.equal(between.jobs.active, 0, 'no job is left with the stopped worker');
      assert.equal(between.jobs.waiting + between.jobs.completed, 4);

      const second = startWorker([...args, '--exit-when-drained']);
      await waitFor(async () => (slow.requests.size >= 60));
      await redis.restartAfter(2_000);
      const done = await second.exited;
      assert.equal(done.code, 0, done.stderr);
      assert.equal((await runCli(['finalize', ...q, '--output', output])).code, 0);
      const images = (await readdir(output)).filter((name) => name.endsWith('.png')).sort();
      assert.deepEqual(images, rows.good.map(({ id }) => `${id}.png`).sort(), 'every good row saved once');
      for (const { path } of rows.good) assert.equal(slow.requests.get(path), 1, `${path} was fetched once`);
    } finally {
      await slow.close();
    }
  });

  it('WebDataset shards from many workers: names from the jobs, each sample in one shard, what a killed worker left is settled', async () => {
    const queue = 'shards';
    const input = join(work.path, 'shards.ndjson');
    const rows = makeRows(server.base, 300);
    await writeFile(input, rows.text);
    const output = join(work.path, 'shards-out');
    const q = ['--redis', redis.url, '--queue', queue];
    assert.equal((await runCli(['enqueue', ...q, '--input', input, '--rows-per-job', '50'])).code, 0);
    const args = [...q, '--output', output, '--sink', 'webdataset', '--samples-per-shard', '10', '--resolution', '32', '--per-host-concurrency', '4', '--job-lock', '5', '--exit-when-drained', '--log-every', '0'];
    const [victim, other] = [startWorker(args), startWorker(args)];
    await waitFor(async () => (await readdir(output).catch(() => [])).filter((name) => name.endsWith('.tar')).length >= 4);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const replacement = startWorker(args);
    for (const worker of [other, replacement]) assert.equal((await worker.exited).code, 0);
    const finalized = await runCli(['finalize', ...q, '--output', output]);
    assert.equal(finalized.code, 0, finalized.stderr);

    const names = await readdir(output);
    const shards = names.filter((name) => name.endsWith('.tar')).sort();
    assert.ok(shards.every((name) => /^rows-\d{9}-\d{9}-\d{2}\.tar$/.test(name)), shards.join(' '));
    const seen = new Map();
    for (const shard of shards) {
      assert.ok(names.includes(shard.replace('.tar', '_stats.json')), `${shard} has its stats`);
      for (const key of await tarKeys(join(output, shard))) seen.set(key, [...(seen.get(key) ?? []), shard]);
    }
    const twice = [...seen].filter(([, where]) => where.length > 1);
    assert.deepEqual(twice, [], 'no sample in two shards');
    assert.deepEqual([...seen.keys()].sort(), rows.good.map(({ id }) => id).sort(), 'every good sample in a shard');
    assert.deepEqual(names.filter((name) => name.startsWith('.') && name !== '.pipeline'), [], 'no temporary file left');
    assert.match(finalized.stdout, new RegExp(`: ${rows.good.length} samples`));
  });

  it('--dedupe url,content holds across workers: one job after another, what one worker saved the next one skips', async () => {
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
