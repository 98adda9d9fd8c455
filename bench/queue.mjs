#!/usr/bin/env node
// Queue workers against one loopback image host (bench/serve.mjs, its own process), with
// a real redis-server: the same rows through a single-machine run (the baseline, measured
// in the same sitting) and through 1, 2 and 3 workers on one queue. Prints rows/s and the
// ratio to the baseline, and what Redis did per row (commands, server CPU, memory).
//
//   npm run build && node bench/queue.mjs [--rows 600] [--images small|photos] [--workers 1,2,3] [--rows-per-job 100] [--pin]
//
// small: the bench's 8 small JPEGs (per-row overhead dominates); photos: the bench's
// photos at --resolution 512 (decoding dominates; --pin: at 1024, as `npm run bench`).
//
// --pin: how far worker processes take one machine past one process. Worker i is pinned to
// core i with `taskset` and decodes one image at a time (--image-concurrency 1), so 1 worker
// against 2 workers is one core's worth of pipeline against two; the image server and Redis
// are not pinned and take their share of the same cores (printed).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from '../test/support/redis.mjs';
import { cpuSeconds, threadTicks } from './proc.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/pipeline.js');
const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '600' },
    images: { type: 'string', default: 'small' },
    workers: { type: 'string', default: '1,2,3' },
    'rows-per-job': { type: 'string', default: '100' },
    pin: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const folder = join(ROOT, '.bench-cache', values.images === 'photos' ? 'photos' : 'small');
const files = (await readdir(folder).catch(() => [])).filter((name) => /\.(jpg|png|webp)$/.test(name)).sort();
if (files.length === 0) {
  console.error(`no images in ${folder}: run npm run bench once to fetch or make them`);
  process.exit(2);
}
const pin = values.pin;
const resolution = values.images === 'photos' ? (pin ? '1024' : '512') : '64';
// Workers are started with the process settings given, as docs/queue.md's lines do: one process each.
const SETTINGS = ['--initial-old-space-size=64'];
const ENV = { ...process.env, MALLOC_ARENA_MAX: '2', UV_THREADPOOL_SIZE: pin ? '5' : String((await import('node:os')).availableParallelism() + 4) };

const server = spawn(process.execPath, [join(ROOT, 'bench/serve.mjs'), folder], { stdio: ['pipe', 'pipe', 'inherit'] });
const origin = await new Promise((resolve) => server.stdout.once('data', (chunk) => resolve(String(chunk).trim())));
const redis = await startRedis();
const work = await mkdtemp(join(tmpdir(), 'pcp-queue-bench-'));
try {
  const input = join(work, 'rows.ndjson');
  const lines = Array.from({ length: rows }, (_, i) => JSON.stringify({ id: `q${i}`, url: `${origin}/photos/${files[i % files.length]}?n=${i}`, cogvlm_caption: `photo ${i}` }));
  await writeFile(input, `${lines.join('\n')}\n`);
  const common = ['--resolution', resolution, '--format', 'jpeg', '--log-every', '0', '--quiet', ...(pin ? ['--image-concurrency', '1'] : [])];

  let started = performance.now();
  const single = await run([...SETTINGS, CLI, '--input', input, '--output', join(work, 'single'), '--summary', join(work, 'single.json'), ...common], pin ? 0 : undefined);
  if (single.code !== 0) throw new Error(single.stderr);
  const baseline = rows / ((performance.now() - started) / 1000);
  const { saved } = JSON.parse(await readFile(join(work, 'single.json'), 'utf8'));
  if (saved !== rows) throw new Error(`the single-machine run saved ${saved} of ${rows} rows`);
  console.log(`${values.images}, ${rows} rows, ${process.env.HOSTNAME ?? ''} ${(await import('node:os')).availableParallelism()} cores`);
  console.log(`single-machine run${pin ? ', pinned to core 0' : ''}: ${baseline.toFixed(1)} rows/s (baseline)`);

  const client = redis.client();
  /** rows/s by number of workers. */
  const speeds = new Map();
  for (const count of values.workers.split(',').map(Number)) {
    const queue = `bench-${count}`;
    const q = ['--redis', redis.url, '--queue', queue];
    const enqueued = await run([CLI, 'enqueue', ...q, '--input', input, '--rows-per-job', values['rows-per-job']]);
    if (enqueued.code !== 0) throw new Error(enqueued.stderr);
    await client.config('RESETSTAT');
    const [serverBefore, redisBefore] = [cpuSeconds(threadTicks(server.pid)), cpuSeconds(threadTicks(redis.pid))];
    started = performance.now();
    const workers = await Promise.all(
      Array.from({ length: count }, (_, i) => run([...SETTINGS, CLI, 'worker', ...q, '--output', join(work, queue), '--exit-when-drained', ...common], pin ? i : undefined)),
    );
    const seconds = (performance.now() - started) / 1000;
    const shared = `the image server took ${(((cpuSeconds(threadTicks(server.pid)) - serverBefore) / seconds) * 100).toFixed(0)}% of a core, Redis ${(((cpuSeconds(threadTicks(redis.pid)) - redisBefore) / seconds) * 100).toFixed(0)}%`;
    for (const worker of workers) if (worker.code !== 0) throw new Error(worker.stderr);
    const info = await client.info("commandstats");
    if (process.env.BENCH_COMMANDS) console.log(info);
    const stats = commandStats(info);
    const memory = Number(await client.memory('USAGE', `pcp:${queue}:samples`));
    const status = await run([CLI, 'status', ...q, '--json']);
    const { samples } = JSON.parse(status.stdout);
    if (samples.saved !== rows) throw new Error(`${count} worker(s) saved ${samples.saved} of ${rows} rows`);
    const perSecond = rows / seconds;
    speeds.set(count, perSecond);
    console.log(
      `${count} worker(s): ${perSecond.toFixed(1)} rows/s = ${(perSecond / baseline).toFixed(2)} x baseline; ` +
        `Redis per row: ${(stats.calls / rows).toFixed(1)} commands, ${(stats.usec / rows).toFixed(0)} us of server CPU; ` +
        `state ${(memory / rows).toFixed(0)} bytes per sample; ${shared}`,
    );
  }
  client.disconnect();
  if (pin && speeds.has(1)) {
    for (const [count, perSecond] of speeds) if (count > 1) console.log(`${count} workers on a core each / 1 worker on one core: ${(perSecond / speeds.get(1)).toFixed(2)}`);
  }
} finally {
  server.stdin.end();
  await redis.close();
  await rm(work, { recursive: true, force: true });
}

/** Total calls and microseconds over every command (INFO commandstats). @param {string} info */
function commandStats(info) {
  let calls = 0;
  let usec = 0;
  for (const match of info.matchAll(/calls=(\d+),usec=(\d+)/g)) {
    calls += Number(match[1]);
    usec += Number(match[2]);
  }
  return { calls, usec };
}

/** @param {string[]} args @param {number} [core] pin the process (and its threads) to this core */
function run(args, core) {
  return new Promise((resolve) => {
    const child = core === undefined ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: ENV }) : spawn('taskset', ['-c', String(core), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
