#!/usr/bin/env node
// What a hostile network costs: the same 1,000 rows through a clean server and through the
// fault-injecting one (test/support/faulty-server.mjs), with default fetch settings except
// shorter deadlines. Prints time and requests for each, and the outcome by reason.
//
//   npm run build && node bench/faults.mjs [rows]
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runPipeline } from '../dist/index.js';
import { startFaultyServer } from '../test/support/faulty-server.mjs';

const rows = Number(process.argv[2] ?? 1000);
// One fault in four rows, each kind as common as the next; transient ones heal on retry.
const FAULTS = [
  (key) => `/flaky/429/1/${key}?retry-after=1`,
  (key) => `/flaky/503/1/${key}`,
  (key) => `/reset/1/${key}`,
  (key) => `/cut/1/${key}`,
  (key) => `/status/404/${key}`,
  (key) => `/html/${key}`,
  (key) => `/stall-body/${key}`,
  (key) => `/redirect/2/${key}`,
];

const server = await startFaultyServer();
const work = join(tmpdir(), `pcp-faults-${process.pid}`);
try {
  const clean = await measure('clean', (i) => `/ok/clean-${i}`);
  const faulty = await measure('faulty', (i) => (i % 4 === 0 ? (FAULTS[(i / 4) % FAULTS.length] ?? FAULTS[0])(`f-${i}`) : `/ok/faulty-${i}`));
  console.log(`\n${rows} rows, concurrency 16, retries 3, retry delay 1 s, idle timeout 2 s`);
  for (const run of [clean, faulty]) {
    console.log(`${run.name.padEnd(7)} ${run.seconds.toFixed(1).padStart(6)} s  ${String(run.requests).padStart(5)} requests  saved ${run.summary.saved}  failed ${JSON.stringify(run.summary.failures)}`);
  }
  console.log(`faulty/clean: ${(faulty.seconds / clean.seconds).toFixed(2)}x the time, ${(faulty.requests / clean.requests).toFixed(2)}x the requests`);
} finally {
  await server.close();
  await rm(work, { recursive: true, force: true });
}

async function measure(name, pathFor) {
  const input = join(work, `${name}.ndjson`);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(work, { recursive: true });
  await writeFile(input, Array.from({ length: rows }, (_, i) => `${JSON.stringify({ id: i, url: server.origin + pathFor(i), cogvlm_caption: 'x' })}\n`).join(''));
  const before = server.totalRequests();
  const started = performance.now();
  const summary = await runPipeline({
    input: { path: input }, output: join(work, name), sink: 'null',
    fetch: { idleTimeoutMs: 2000, headersTimeoutMs: 5000 }, report: { quiet: true, logEveryMs: 0 },
  });
  return { name, summary, seconds: (performance.now() - started) / 1000, requests: server.totalRequests() - before };
}
