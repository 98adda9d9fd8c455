// Fetching from a hostile network: a fault-injecting server on 127.0.0.1 shows which ids
// end saved, which fail with which reason, and how many requests each cost.
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runPipeline } from '../dist/index.js';
import { PHOTOS } from './support/cdn.mjs';
import { startFaultyServer } from './support/faulty-server.mjs';
import { startBlackHole } from './support/black-hole.mjs';
import { outputFiles, readResults, runCli, tempDir } from './support/run.mjs';
import { runs, unlessMissing } from './support/needs.mjs';

/** @type {Awaited<ReturnType<typeof startFaultyServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;

before(async () => {
  server = await startFaultyServer({ hosts: ['127.0.0.1', '127.0.0.2'] });
  work = await tempDir();
});
after(async () => {
  await server.close();
  await work.cleanup();
});

const FAST = {
  retries: 2,
  retryDelayMs: 50,
  timeoutMs: 2000,
  connectTimeoutMs: 500,
  headersTimeoutMs: 500,
  idleTimeoutMs: 500,
};

/**
 * Runs the pipeline over rows with these urls (id = position) and returns results by id.
 * @param {string} name
 * @param {string[]} urls
 * @param {object} [fetch]
 */
async function run(name, urls, fetch = {}) {
  const input = join(work.path, `${name}.ndjson`);
  await writeFile(input, urls.map((url, i) => `${JSON.stringify({ id: i + 1, url, cogvlm_caption: 'c' })}\n`).join(''));
  const resultsPath = join(work.path, `${name}-results.ndjson`);
  const summary = await runPipeline({
    input: { path: input },
    output: join(work.path, name),
    sink: 'null',
    fetch: { ...FAST, ...fetch },
    report: { resultsPath, quiet: true, logEveryMs: 0 },
  });
  const results = new Map((await readResults(resultsPath)).map((result) => [result.url, result]));
  return { summary, results };
}

describe('retries, deadlines, redirects, opt-outs', () => {
  /** @type {Array<[string, string, number, number?]>} [path, expected status or reason, attempts, requests to the path (default: attempts)] */
  const table = [
    ['/ok/1', 'saved', 1],
    ['/status/404/2', 'http_404', 1],
    ['/status/410/3', 'http_410', 1],
    ['/status/403/4', 'http_403', 1],
    ['/flaky/429/2/5?retry-after=1', 'saved', 3],
    ['/flaky/503/1/6?retry-after=date:2', 'saved', 2],
    ['/flaky/500/9/7', 'http_500', 3],
    ['/flaky/502/1/8', 'saved', 2],
    ['/reset/1/9', 'saved', 2],
    ['/reset/9/10', 'connection_error', 3],
    ['/cut/1/11', 'saved', 2],
    ['/cut/9/12', 'truncated', 3],
    ['/html/13', 'not_image', 1],
    ['/stall-headers/14', 'timeout_headers', 3],
    ['/stall-body/15', 'timeout_body', 3],
    ['/drip/16', 'timeout_total', 3],
    ['/redirect/3/17', 'saved', 1, 1],
    ['/redirect/6/18', 'redirect_loop', 1, 1],
    ['/loop/a/19', 'redirect_loop', 1, 1],
    ['/to-file/20', 'bad_url', 1],
    ['/robots/noai/21', 'robots_denied', 1],
    ['/robots/noimageai/22', 'robots_denied', 1],
    ['/robots/otherbot%3A%20noai/23', 'saved', 1],
    ['/robots/photo-concept-pipeline%3A%20noimageai/24', 'robots_denied', 1],
    ['/robots/noindex%2C%20nofollow/25', 'robots_denied', 1], // img2dataset's four are the default
    ['/robots/nofollow/26', 'saved', 1],
  ];

  test('each fault ends as expected, after the expected number of requests', async () => {
    const urls = [
      ...table.map(([path]) => `${server.origin}${path}`),
      'ftp://127.0.0.1/photo.jpg',
      'data:image/png;base64,iVBORw0KGgo=',
      'file:///etc/passwd',
    ];
    const { summary, results } = await run('faults', urls);
    for (const [path, expected, attempts, requests] of table) {
      const result = results.get(`${server.origin}${path}`);
      assert.ok(result, path);
      assert.equal(result.status === 'saved' ? 'saved' : result.reason, expected, `${path}: ${JSON.stringify(result)}`);
      assert.equal(result.attempts, attempts, `${path}: attempts`);
      const pathOnly = String(path).split('?')[0] ?? '';
      if (requests !== undefined) {
        assert.equal(server.requestsFor(pathOnly), requests, `${path}: requests to this path`);
      } else {
        assert.equal(server.requestsFor(pathOnly), attempts, `${path}: requests`);
      }
    }
    for (const url of urls.slice(table.length)) {
      const result = results.get(url);
      assert.equal(result?.reason, 'bad_url', url);
      assert.equal(result?.attempts, 0, `${url} was never fetched`);
    }
    assert.equal(summary.rows, urls.length);

    // Redirect chains are followed (3 hops then the image), and capped at 5.
    assert.equal(server.requestsFor('/redirect/0/17'), 1);
    assert.equal(server.requestsFor('/redirect/1/18'), 1, 'the 5th redirect is followed');
    assert.equal(server.requestsFor('/redirect/0/18'), 0, 'the 6th is not');

    // Retry-After is honoured: seconds, and an HTTP date.
    const arrivals = (path) => server.log.filter((entry) => entry.path === path).map((entry) => entry.at);
    const [first429, second429, third429] = arrivals('/flaky/429/2/5');
    assert.ok(second429 - first429 >= 1000 && third429 - second429 >= 1000, 'Retry-After: 1 waited at least 1 s each time');
    const [first503, second503] = arrivals('/flaky/503/1/6');
    assert.ok(second503 - first503 >= 900, 'Retry-After as an HTTP date waited until then');

    // A stalled body is abandoned within its deadline: the server sees the socket close.
    const stalled = server.log.filter((entry) => entry.path === '/stall-body/15');
    for (const entry of stalled) {
      assert.ok(entry.closedAt !== undefined, 'socket closed by the client');
      const held = entry.closedAt - entry.at;
      assert.ok(held >= 450 && held < 1500, `abandoned after ${held} ms (idle deadline 500 ms)`);
    }
    for (const entry of server.log.filter((candidate) => candidate.path === '/drip/16')) {
      const held = (entry.closedAt ?? Infinity) - entry.at;
      assert.ok(held >= 1500 && held < 3500, `dripping body abandoned after ${held} ms (total deadline 2 s, counted from before the request was sent)`);
    }
  });

  test('--disallowed-robots-tags sets which directives opt an image out', async () => {
    const urls = ['noindex/31', 'noai/32', 'otherbot%3A%20noindex/33', 'NoImageIndex/34'].map((path) => `${server.origin}/robots/${path}`);
    const { results } = await run('robots-strict', urls, { disallowedRobotsTags: ['noindex', 'noimageindex'] });
    assert.deepEqual(urls.map((url) => results.get(url)?.reason ?? results.get(url)?.status), ['robots_denied', 'saved', 'saved', 'robots_denied']);
    assert.match(results.get(urls[0])?.detail ?? '', /X-Robots-Tag noindex/);
    const cli = await runCli(['--output', join(work.path, 'robots-cli'), '--sink', 'null', '--disallowed-robots-tags', 'noindex', '--results', join(work.path, 'robots-cli.ndjson')], {
      stdin: `${JSON.stringify({ id: 1, url: urls[0], cogvlm_caption: 'c' })}\n`,
    });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal((await readResults(join(work.path, 'robots-cli.ndjson')))[0]?.reason, 'robots_denied');
  });

  test("--disallowed-robots-tags noai,noimageai keeps the narrower reading: indexes' opt-outs are fetched", async () => {
    const urls = ['noindex/41', 'NoImageIndex/42', 'noai/43', '*%3A%20noimageai/44'].map((path) => `${server.origin}/robots/${path}`);
    const input = join(work.path, 'robots-narrow.ndjson');
    await writeFile(input, urls.map((url, i) => `${JSON.stringify({ id: i + 1, url, cogvlm_caption: 'c' })}\n`).join(''));
    const results = join(work.path, 'robots-narrow.ndjson.results');
    const cli = await runCli(['--input', input, '--output', join(work.path, 'robots-narrow'), '--sink', 'null', '--disallowed-robots-tags', 'noai,noimageai', '--results', results]);
    assert.equal(cli.code, 0, cli.stderr);
    const byUrl = new Map((await readResults(results)).map((result) => [result.url, result.reason ?? result.status]));
    assert.deepEqual(urls.map((url) => byUrl.get(url)), ['saved', 'saved', 'robots_denied', 'robots_denied']);
  });

  test('--ignore-robots-tag fetches opted-out images', async () => {
    const { results } = await run('robots-ignored', [`${server.origin}/robots/noai/ignored`], { respectRobotsTag: false });
    assert.equal(results.get(`${server.origin}/robots/noai/ignored`)?.status, 'saved');
  });

  test('a connection that never opens fails with timeout_connect', { skip: unlessMissing(runs('python3', '-c', 'import socket'), 'python3 (to hold a port half-open)') }, async () => {
    const hole = await startBlackHole();
    assert.ok(hole, 'the half-open port started');
    try {
      const url = `${hole.origin}/never.jpg`;
      const { results } = await run('connect', [url], { retries: 1 });
      assert.equal(results.get(url)?.reason, 'timeout_connect');
      assert.equal(results.get(url)?.attempts, 2);
    } finally {
      hole.close();
    }
  });
});

describe('per-host politeness', () => {
  test('the per-host cap holds on each host, and both hosts are used at once', async () => {
    const start = server.log.length;
    const urls = [];
    for (let i = 0; i < 24; i++) urls.push(`${server.origins[i % 2]}/slow/100/cap-${i}`);
    const { summary } = await run('cap', urls, { concurrency: 16, perHostConcurrency: 3 });
    assert.equal(summary.saved, 24);
    const entries = server.log.slice(start);
    for (const host of ['127.0.0.1', '127.0.0.2']) {
      const peak = Math.max(...entries.filter((entry) => entry.host === host).map((entry) => entry.inFlight));
      assert.equal(peak, 3, `${host}: at most 3 in flight, and the cap is reached`);
    }
  });

  test('a 429 halves the host limit and pauses the host for Retry-After: no retry storm', async () => {
    const host = '127.0.0.2';
    const start = server.log.length;
    const urls = Array.from({ length: 40 }, (_, i) => `${server.origins[1]}/limited/4/aimd-${i}`);
    const { summary, results } = await run('aimd', urls, { concurrency: 16, perHostConcurrency: 8, retries: 5 });
    assert.equal(summary.saved, 40, JSON.stringify(summary.failures));
    const entries = server.log.slice(start).filter((entry) => entry.host === host);
    const tooMany = entries.filter((entry) => entry.status === 429);
    assert.ok(tooMany.length >= 1, 'the server did push back');
    assert.ok(tooMany.length <= 10, `${tooMany.length} requests got 429: the client slowed down instead of retrying at full speed`);
    assert.equal(entries.length, 40 + tooMany.length, 'one request per row plus one per 429');
    const first429 = Math.min(...tooMany.map((entry) => entry.at));
    const pause = entries.filter((entry) => entry.at > first429 + 200 && entry.at < first429 + 900);
    assert.equal(pause.length, 0, 'no request started while the host was paused by Retry-After: 1');
    const afterwards = entries.filter((entry) => entry.at >= first429 + 900);
    assert.ok(Math.max(...afterwards.map((entry) => entry.inFlight)) <= 6, 'the host limit stayed lowered');
    for (const result of results.values()) assert.ok(result.attempts <= 3, `${result.url}: ${result.attempts} attempts`);
  });

  test('--rate spaces request starts on one host', async () => {
    const start = server.log.length;
    const urls = Array.from({ length: 6 }, (_, i) => `${server.origin}/ok/rate-${i}`);
    const { summary } = await run('rate', urls, { ratePerSecond: 10 });
    assert.equal(summary.saved, 6);
    const times = server.log.slice(start).map((entry) => entry.at).sort((a, b) => a - b);
    assert.ok((times.at(-1) ?? 0) - (times[0] ?? 0) >= 450, '6 requests at 10/s span at least 0.5 s');
  });
});

describe('the process', () => {
  test('exits by itself after a run full of faults: no socket or timer left open', async () => {
    const input = join(work.path, 'exit.ndjson');
    const paths = ['/ok/e1', '/stall-body/e2', '/stall-headers/e3', '/reset/9/e4', '/flaky/503/9/e5?retry-after=1', '/drip/e6'];
    await writeFile(input, paths.map((path, i) => `${JSON.stringify({ id: i, url: server.origin + path, cogvlm_caption: 'x' })}\n`).join(''));
    const started = Date.now();
    const child = await runCli([
      '--input', input, '--output', join(work.path, 'exit'), '--sink', 'null', '--retries', '1', '--retry-delay', '0.05',
      '--timeout', '2', '--headers-timeout', '0.5', '--idle-timeout', '0.5', '--patience', '1',
    ]);
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stderr, /6 rows, 1 saved, 5 failed/);
    assert.ok(Date.now() - started < 20_000, 'finished promptly');
  });
});

describe('--cdn-resize', () => {
  test('asks an imgix-style host for a scaled copy and still lands on the exact size', async () => {
    const { readdir } = await import('node:fs/promises');
    const sharp = (await import('sharp')).default;
    const input = join(work.path, 'cdn.ndjson');
    const rows = [
      { id: 1, url: `${server.origin}/imgix/aqua.jpg?auto=compress&cs=tinysrgb&fm=jpg&dpr=2`, cogvlm_caption: 'sea', width: 2560, height: 1600 },
      { id: 2, url: `${server.origin}/imgix/dragonfly.jpg`, cogvlm_caption: 'dragonfly', width: 1400, height: 1050 },
    ];
    await writeFile(input, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
    const output = join(work.path, 'cdn');
    const before = server.log.length;
    const summary = await runPipeline({
      input: { path: input }, output, image: { resolution: 512 }, fetch: { cdnResizeHosts: ['127.0.0.1'] }, report: { quiet: true, logEveryMs: 0 },
    });
    assert.equal(summary.saved, 2);
    assert.deepEqual(await outputFiles(output), ['1.png', '1.txt', '2.png', '2.txt']);
    const requested = server.log.slice(before).map((entry) => entry.query);
    assert.ok(requested.includes('?cs=tinysrgb&fm=jpg&w=832&h=520&q=95'), `kept cs and fm, dropped the rest: ${requested}`);
    assert.ok(requested.includes('?w=704&h=528&q=95'), `${requested}`);
    const [one, two] = await Promise.all([sharp(join(output, '1.png')).metadata(), sharp(join(output, '2.png')).metadata()]);
    assert.deepEqual([one.width, one.height], [832, 512], 'same size as from the 2560x1600 original');
    assert.deepEqual([two.width, two.height], [704, 512]);
    const originals = (await stat(join(PHOTOS, 'aqua.jpg'))).size + (await stat(join(PHOTOS, 'dragonfly.jpg'))).size;
    assert.ok(summary.bytesFetched < originals / 1.5, `smaller downloads: ${summary.bytesFetched} bytes instead of ${originals}`);
  });
});
