#!/usr/bin/env node
// Politeness under a real-shaped rate limiter: rows of real photos through
// test/support/rate-limited-server.mjs (nginx limit_req semantics: a per-client leaky
// bucket, 429 without Retry-After), default flags. Prints, per limit: rows saved, requests
// made and rejected, the rejected share, and the time against rows / rate.
//
//   npm run build && node bench/rate-limit.mjs [--rows 200] [--limits 4,25] [--burst 4] [--cli dist/pipeline.js]
//
// --cli runs another build of the command (e.g. an older checkout) against the same
// servers, to compare in one sitting.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRateLimitedServer } from '../test/support/rate-limited-server.mjs';
import { PHOTO_FILES } from '../test/support/cdn.mjs';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '200' },
    limits: { type: 'string', default: '4,25' },
    burst: { type: 'string', default: '4' },
    cli: { type: 'string', default: new URL('../dist/pipeline.js', import.meta.url).pathname },
  },
});
const rows = Number(values.rows);
const burst = Number(values.burst);
const photos = PHOTO_FILES.filter((name) => name.endsWith('.jpg'));

for (const limit of values.limits.split(',').map(Number)) {
  const server = await startRateLimitedServer({ ratePerSecond: limit, burst });
  const work = await mkdtemp(join(tmpdir(), 'pcp-rate-'));
  try {
    const input = join(work, 'rows.ndjson');
    const lines = Array.from({ length: rows }, (_, i) => JSON.stringify({ id: `r${i}`, url: `${server.origin}/photos/${photos[i % photos.length]}/r${i}`, cogvlm_caption: `photo ${i}` }));
    await writeFile(input, `${lines.join('\n')}\n`);
    const started = performance.now();
    const { code, stderr } = await run([values.cli, '--input', input, '--output', join(work, 'out'), '--resolution', '256', '--format', 'jpeg', '--quiet', '--summary', join(work, 'summary.json')]);
    const seconds = (performance.now() - started) / 1000;
    const summary = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(join(work, 'summary.json'), 'utf8')).catch(() => '{}'));
    const { requests, rejected } = server.counts;
    const ideal = rows / limit;
    console.log(
      `limit ${limit}/s burst ${burst}: exit ${code}, ${summary.saved ?? '?'} of ${rows} saved, failures ${JSON.stringify(summary.failures ?? {})}; ` +
        `${requests} requests, ${rejected} rejected (${((100 * rejected) / Math.max(requests, 1)).toFixed(1)}%); ` +
        `${seconds.toFixed(1)} s = ${(seconds / ideal).toFixed(2)} x rows/rate (${ideal.toFixed(1)} s)`,
    );
    if (code !== 0) console.log(stderr);
  } finally {
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** @param {string[]} args */
function run(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
