// What the queue tests share: a real redis-server and a counting image server, rows with
// known bad ones among them, and readers of what the workers wrote.
import { openAsBlob } from 'node:fs';
import { after, before } from 'node:test';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { startCli } from './child.mjs';
import { startCountingServer } from './counting-server.mjs';
import { startRedis } from './redis.mjs';
import { tempDir } from './run.mjs';

/**
 * A worker, started with the process settings already given, as docs/reference.md's cron
 * and systemd lines do, so it is one process: the pid a test kills is the one doing the work.
 * @param {string[]} args
 */
export function startWorker(args) {
  return startCli(['worker', ...args]);
}

/** Redis, an image server answering after 25 ms, and a folder; `close` ends all three. */
export async function startQueueFixture() {
  const redis = await startRedis();
  const server = await startCountingServer({ delayMs: 25 });
  const work = await tempDir();
  const close = async () => {
    await server.close();
    await redis.close();
    await work.cleanup();
  };
  return { redis, server, work, close };
}

/**
 * The fixture of a describe block: started before its tests, closed after them. Its fields
 * are there once the tests run.
 */
export function useQueueFixture() {
  const fixture = /** @type {Awaited<ReturnType<typeof startQueueFixture>>} */ ({});
  before(async () => Object.assign(fixture, await startQueueFixture()));
  after(() => fixture.close());
  return fixture;
}

/** A metadata.parquet's rows as [filename, caption] pairs, in order. @param {string} path */
export async function readMetadata(path) {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
  const names = /** @type {string[]} */ (table.getChild('filename')?.toArray() ?? []);
  const captions = /** @type {string[]} */ (table.getChild('caption')?.toArray() ?? []);
  return names.map((name, i) => [name, captions[i]]);
}

/**
 * Rows of the test input: good ones, every 25th a 404, and every 97th a broken line.
 * @param {string} base @param {number} count
 */
export function makeRows(base, count) {
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
