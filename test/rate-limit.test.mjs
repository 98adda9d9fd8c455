// Politeness under a rate limiter that answers 429 without Retry-After
// (support/rate-limited-server.mjs, nginx limit_req semantics): the pace adapts, every row
// is saved, being told to wait spends no --retries, and the host's pace is visible.
// Outcomes and request counts are asserted, never speed.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PHOTO_FILES } from './support/cdn.mjs';
import { startFaultyServer } from './support/faulty-server.mjs';
import { startRateLimitedServer } from './support/rate-limited-server.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';

/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
before(async () => {
  work = await tempDir();
});
after(async () => {
  await work.cleanup();
});

describe('a rate limiter without Retry-After', () => {
  test('every row is saved, few requests are rejected, attempts are honest, and the pace is visible', async () => {
    const server = await startRateLimitedServer({ ratePerSecond: 8, burst: 2 });
    try {
      const photos = PHOTO_FILES.filter((name) => name.endsWith('.jpg'));
      const rows = Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, url: `${server.origin}/photos/${photos[i % photos.length]}/r${i}`, cogvlm_caption: `photo ${i}` }));
      const input = join(work.path, 'limited.ndjson');
      await writeFile(input, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
      const results = join(work.path, 'limited-results.ndjson');
      const metrics = join(work.path, 'limited.prom');
      const run = await runCli([
        '--input', input, '--output', join(work.path, 'limited'), '--resolution', '64', '--format', 'jpeg',
        // No retries at all: a 429 must still not fail a row.
        '--retries', '0', '--concurrency', '4', '--results', results, '--metrics-file', metrics, '--log-every', '0.5',
      ]);
      assert.equal(run.code, 0, run.stderr);
      const outcomes = await readResults(results);
      assert.deepEqual(outcomes.filter((result) => result.status !== 'saved'), [], 'no row failed');
      assert.equal(outcomes.length, rows.length);

      const { requests, rejected } = server.counts;
      assert.ok(rejected > 0, 'the limiter was reached');
      assert.ok(rejected / requests <= 0.2, `${rejected} of ${requests} requests rejected`);
      assert.equal(outcomes.reduce((sum, result) => sum + result.attempts, 0), requests, 'attempts count every request, 429s included');
      for (const result of outcomes) assert.equal(result.attempts, server.requestsFor(new URL(rows.find((row) => row.id === result.id)?.url ?? '').pathname), result.id);

      const host = new URL(server.origin).host;
      const text = await readFile(metrics, 'utf8');
      assert.match(text, new RegExp(`^photo_pipeline_host_slow_downs_total\\{host="${host}"\\} ${rejected}$`, 'm'));
      assert.match(text, new RegExp(`^photo_pipeline_host_pace_requests_per_second\\{host="${host}"\\} \\d+(\\.\\d+)?$`, 'm'));
      assert.match(text, new RegExp(`^photo_pipeline_host_in_flight_limit\\{host="${host}"\\} \\d+$`, 'm'));
      assert.match(run.stderr, new RegExp(`^progress: .* \\| ${host}: \\d+ of \\d+ in flight, \\d+\\.\\d+ req/s, \\d+ told to slow down$`, 'm'));
    } finally {
      await server.close();
    }
  });

  test('a sample told to wait for longer than --patience fails http_429, with every attempt counted and no --retries spent', async () => {
    const server = await startFaultyServer();
    try {
      const input = join(work.path, 'patience.ndjson');
      await writeFile(input, `${JSON.stringify({ id: 'p', url: `${server.origin}/status/429/p`, cogvlm_caption: 'p' })}\n`);
      const results = join(work.path, 'patience-results.ndjson');
      const run = await runCli(['--input', input, '--output', join(work.path, 'patience'), '--retries', '0', '--patience', '1', '--results', results]);
      assert.equal(run.code, 0, run.stderr);
      const [result] = await readResults(results);
      assert.equal(result?.reason, 'http_429');
      assert.ok((result?.attempts ?? 0) >= 2, `asked again after the first 429 although --retries is 0 (${result?.attempts} attempts)`);
      assert.equal(result?.attempts, server.requestsFor('/status/429/p'));
      assert.match(result?.detail ?? '', /still told to wait after \d+ s, \d+ attempts; --patience/);
    } finally {
      await server.close();
    }
  });
});
