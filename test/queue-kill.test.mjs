// Many workers on one queue (BullMQ on a real redis-server), sharing one output folder,
// one of them killed with SIGKILL mid-job.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { waitFor } from './support/child.mjs';
import { unlessMissing } from './support/needs.mjs';
import { makeRows, readMetadata, startWorker, useQueueFixture } from './support/queue.mjs';
import { HAVE_REDIS } from './support/redis.mjs';
import { readResults, runCli } from './support/run.mjs';
import { loadLikeSimpleTuner } from './support/simpletuner.mjs';

// Jobs are locked for 5 s (--job-lock): long enough that a live worker on a busy 2-core
// machine always renews its lock in time (only the killed one loses its job), short enough
// that the dead worker's job comes back within seconds.

describe('workers on a queue, one killed', { skip: unlessMissing(HAVE_REDIS, 'redis-server (apt-get install redis-server)') }, () => {
  const fixture = useQueueFixture();

  it('three workers, one killed mid-job and replaced: every row once, nothing fetched twice that was stored, the host cap held by all together', async () => {
    const { redis, server, work } = fixture;
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
});
