// Workers on one queue stopped by SIGTERM, by SIGKILL while writing shards, and a Redis
// that goes away under them (BullMQ on a real redis-server).
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { waitFor } from './support/child.mjs';
import { unlessMissing } from './support/needs.mjs';
import { makeRows, startWorker, useQueueFixture } from './support/queue.mjs';
import { HAVE_REDIS } from './support/redis.mjs';
import { runCli } from './support/run.mjs';
import { tarKeys } from './support/tar.mjs';
import { startCountingServer } from './support/counting-server.mjs';

// Jobs are locked for 5 s (--job-lock): long enough that a live worker on a busy 2-core
// machine always renews its lock in time (only the killed one loses its job), short enough
// that the dead worker's job comes back within seconds.

describe('workers on a queue that stop', { skip: unlessMissing(HAVE_REDIS, 'redis-server (apt-get install redis-server)') }, () => {
  const fixture = useQueueFixture();

  it('SIGTERM hands the job in hand back within --grace (exit 143); a worker rides out Redis going away', async () => {
    const { redis, work } = fixture;
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
    const { redis, server, work } = fixture;
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
});
