// Fetches URLs in a child process and prints, as one JSON line, what came back, how many
// DNS lookups it took and how long: { lookups, ms, results: [{ ok, reason?, detail? }] }. Start it with
// `node --import ./count-lookups.mjs` so the count starts before undici is loaded.
//
//   node --import ./count-lookups.mjs fetch-many.mjs '{"urls": [...], "via": "fetcher", "fetch": {...}, "inFlight": 8}'
//
// `via: "fetcher"` is the library's fetcher (createFetcher, options from resolveOptions);
// `via: "agent"` is undici's plain Agent with no DNS cache, the count to compare with.
import { Agent, request } from 'undici';
import { createFetcher } from '../../dist/fetch/fetcher.js';
import { resolveOptions } from '../../dist/options.js';
import { lookups } from './count-lookups.mjs';

/** @type {{ urls: string[], via: 'fetcher' | 'agent', fetch?: object, inFlight?: number }} */
const job = JSON.parse(process.argv[2] ?? '{}');

/** @type {(url: string) => Promise<{ ok: boolean, reason?: string, detail?: string }>} */
let fetchOne;
/** @type {() => Promise<void>} */
let close;
if (job.via === 'agent') {
  const agent = new Agent();
  fetchOne = async (url) => {
    const response = await request(url, { dispatcher: agent });
    await response.body.arrayBuffer();
    return { ok: response.statusCode === 200 };
  };
  close = () => agent.close();
} else {
  const fetcher = createFetcher(resolveOptions({ output: '/nonexistent', fetch: { retries: 0, ...job.fetch } }).fetch);
  fetchOne = async (url) => {
    const result = await fetcher.fetch(url);
    return result.ok ? { ok: true } : { ok: false, reason: result.reason, detail: result.detail };
  };
  close = () => fetcher.close();
}

const before = lookups();
const started = performance.now();
/** @type {{ ok: boolean, reason?: string, detail?: string }[]} */
const results = new Array(job.urls.length);
let next = 0;
await Promise.all(
  Array.from({ length: job.inFlight ?? 8 }, async () => {
    while (next < job.urls.length) {
      const index = next++;
      results[index] = await fetchOne(job.urls[index] ?? '');
    }
  }),
);
const counted = lookups() - before;
const ms = Math.round(performance.now() - started);
await close();
process.stdout.write(`${JSON.stringify({ lookups: counted, ms, results })}\n`);
