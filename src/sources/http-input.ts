/**
 * Input read over HTTP(S): `--input https://.../rows.parquet` with no download step.
 *
 * - Parquet is read through HTTP range requests: `HttpRangeFile` looks like the Blob that
 *   parquet-wasm reads a local file through (`size`, `slice(start, end)`), so the reader
 *   fetches the footer and then only the column chunks (and pages) of the rows it needs.
 * - NDJSON, CSV and URL lists are streamed from one GET.
 *
 * Redirects are followed by hand (at most MAX_REDIRECTS, http and https only, no loops), as
 * for images: a Hugging Face resolve URL, the natural input for a Hub dataset, answers 302
 * to a signed CDN URL on another host, as do presigned object-store links. Ranges are read
 * from the URL the redirects ended at; a signed URL expires (a long run outlives it), so
 * when that URL stops answering, the original URL is asked again for a fresh one and the
 * range is tried once more (see `HttpRangeFile`).
 *
 * Every request has the image fetches' deadlines (connect, headers, idle body, total) and
 * User-Agent, and transient failures (timeouts, resets, 408, 429, 5xx) are tried again
 * `retries` times with the same backoff; anything else is an error naming the URL.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { createDispatcher, type ConnectionOptions } from '../fetch/dispatcher.js';
import { errorMessage } from '../errors.js';
import { backoffMs } from '../fetch/fetcher.js';
import { MAX_REDIRECTS, REDIRECT_STATUSES } from '../fetch/http.js';
import { isTransient } from '../reasons.js';

/** What reading input over HTTP needs of the fetch settings (proxy and TLS included). */
export interface HttpInputOptions extends ConnectionOptions {
  readonly userAgent: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryDelayMs: number;
}

export function isUrl(path: string): boolean {
  return /^https?:\/\//i.test(path);
}

/** An input URL that could not be read: the run cannot start (or go on). */
export class HttpInputError extends Error {
  override readonly name = 'HttpInputError';
}

/** No address guard: the input URL is the user's own choice, not data from the internet. */
export function createInputAgent(options: HttpInputOptions): Dispatcher {
  return createDispatcher(options);
}

/**
 * A remote file read by byte ranges, shaped like the Blob parquet-wasm reads files through.
 *
 * Ranges go to the URL the redirects ended at. When that URL answers anything but the
 * range (a signed URL that expired during a long run answers 403), or cannot be reached,
 * the original URL is resolved again and the range tried once more from where it leads
 * now; the file must still have its size there (else it changed under the run).
 */
export class HttpRangeFile {
  readonly size: number;
  readonly #url: string;
  /** Where the redirects from `#url` led last: the URL ranges are asked of. */
  #final: string;
  readonly #agent: Dispatcher;
  readonly #options: HttpInputOptions;

  private constructor(url: string, final: string, size: number, agent: Dispatcher, options: HttpInputOptions) {
    this.#url = url;
    this.#final = final;
    this.size = size;
    this.#agent = agent;
    this.#options = options;
  }

  /** Learns the file's size with a one-byte range request, which also proves ranges work. */
  static async open(url: string, agent: Dispatcher, options: HttpInputOptions): Promise<HttpRangeFile> {
    const { response, url: final } = await followRedirects(url, agent, options, { range: 'bytes=0-0' });
    const { statusCode: status, headers } = response;
    await response.body.dump();
    if (status >= 400) throw new HttpInputError(`cannot read input ${url}: HTTP ${status}${viaRedirect(url, final)}`);
    const total = totalSize(headers);
    if (status !== 206 || total === undefined) {
      throw new HttpInputError(`${url} does not answer range requests (HTTP ${status}${viaRedirect(url, final)}), which reading Parquet over HTTP needs: download it and pass the file`);
    }
    return new HttpRangeFile(url, final, total, agent, options);
  }

  slice(start = 0, end = this.size): { arrayBuffer(): Promise<ArrayBuffer> } {
    const from = Math.max(0, start);
    const to = Math.min(this.size, end);
    return { arrayBuffer: () => this.#read(from, to) };
  }

  async #read(start: number, end: number): Promise<ArrayBuffer> {
    if (end <= start) return new ArrayBuffer(0);
    const url = this.#url;
    const range = `bytes=${start}-${end - 1}`;
    const final = this.#final;
    const redirected = final !== url;
    let answer: Dispatcher.ResponseData | undefined;
    try {
      answer = await withRetries(describeTarget(url, final), this.#options, (signal) => send(final, this.#agent, this.#options, { range }, signal));
    } catch (error) {
      if (!redirected || !(error instanceof HttpInputError)) throw error;
    }
    let resolvedAgain = false;
    if (redirected && answer?.statusCode !== 206) {
      await answer?.body.dump();
      const again = await followRedirects(url, this.#agent, this.#options, { range });
      this.#final = again.url;
      answer = again.response;
      resolvedAgain = true;
    }
    const { statusCode: status, headers, body } = answer!;
    const after = resolvedAgain ? ` (from ${withoutQuery(this.#final)}, after resolving ${url} again)` : '';
    if (status !== 206) {
      await body.dump();
      throw new HttpInputError(`${url}: bytes ${start}-${end - 1} answered HTTP ${status} instead of 206${after}`);
    }
    const total = totalSize(headers);
    if (total !== undefined && total !== this.size) {
      await body.dump();
      throw new HttpInputError(`${url} changed while it was read: it is ${total} bytes long now, ${this.size} at the start${after}`);
    }
    const bytes = new Uint8Array(await body.arrayBuffer());
    if (bytes.length !== end - start) throw new HttpInputError(`${url}: bytes ${start}-${end - 1} came back ${bytes.length} bytes long${after}`);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
}

/** The body of `url` (after its redirects) as a stream (NDJSON, CSV, URL lists), after a 200. */
export async function openHttpText(url: string, agent: Dispatcher, options: HttpInputOptions): Promise<Readable> {
  const { response, url: final } = await followRedirects(url, agent, options, {}, false);
  const { statusCode: status, body } = response;
  if (status !== 200) {
    await body.dump();
    throw new HttpInputError(`cannot read input ${url}: HTTP ${status}${viaRedirect(url, final)}`);
  }
  return body;
}

/** The answer of the URL the redirects from `url` end at, and that URL. */
interface Resolved {
  readonly response: Dispatcher.ResponseData;
  readonly url: string;
}

/**
 * `url`'s answer after following its redirects (each hop with its own retries), as image
 * fetches follow them: http and https only, at most MAX_REDIRECTS, no loops. `headers` go
 * with every hop (a range is asked of the file wherever it is).
 */
async function followRedirects(url: string, agent: Dispatcher, options: HttpInputOptions, headers: Record<string, string>, wholeBody = true): Promise<Resolved> {
  const visited = new Set<string>();
  let current = url;
  for (;;) {
    visited.add(current);
    const hop = current;
    const response = await withRetries(describeTarget(url, hop), options, (signal) => send(hop, agent, options, headers, signal), wholeBody);
    if (!REDIRECT_STATUSES.has(response.statusCode)) return { response, url: current };
    await response.body.dump();
    const refuse = (why: string) => new HttpInputError(`cannot read input ${url}: ${why}`);
    const location = headerValue(response.headers, 'location');
    if (location === undefined) throw refuse(`HTTP ${response.statusCode} without a Location header${viaRedirect(url, current)}`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw refuse(`redirected to an invalid URL ${JSON.stringify(location)}`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw refuse(`redirected to a ${next.protocol} URL, refused (http and https only)`);
    if (visited.has(next.href)) throw refuse(`redirect loop back to ${withoutQuery(next.href)}`);
    if (visited.size > MAX_REDIRECTS) throw refuse(`more than ${MAX_REDIRECTS} redirects`);
    current = next.href;
  }
}

function send(url: string, agent: Dispatcher, options: HttpInputOptions, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Dispatcher.ResponseData> {
  return request(url, { dispatcher: agent, signal, headers: { 'user-agent': options.userAgent, ...headers } });
}

/**
 * One request, tried again after transient failures. With `wholeBody` (ranges), the total
 * deadline covers the body too; a streamed body (text) has only the idle deadline, since
 * the whole input may take hours to read.
 *
 * @param name the input as messages call it
 */
async function withRetries(name: string, options: HttpInputOptions, send: (signal: AbortSignal | undefined) => Promise<Dispatcher.ResponseData>, wholeBody = true): Promise<Dispatcher.ResponseData> {
  for (let attempt = 1; ; attempt++) {
    const deadline = wholeBody ? AbortSignal.timeout(options.timeoutMs) : undefined;
    let problem: string;
    try {
      const response = await send(deadline);
      if (!isTransient(`http_${response.statusCode}`)) return response;
      await response.body.dump();
      problem = `HTTP ${response.statusCode}`;
    } catch (error) {
      problem = deadline?.aborted ? `no complete answer within --timeout ${options.timeoutMs / 1000} s` : errorMessage(error);
    }
    if (attempt > options.retries) throw new HttpInputError(`cannot read input ${name}: ${problem} (after ${attempt} attempts)`);
    await sleep(backoffMs(attempt, options.retryDelayMs));
  }
}

/** The file's size from a 206's Content-Range (`bytes 0-0/12345`). */
function totalSize(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const total = /\/(\d+)$/.exec(headerValue(headers, 'content-range') ?? '')?.[1];
  return total === undefined ? undefined : Number(total);
}

function headerValue(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The input, and where it was redirected to when that is not itself. */
function describeTarget(url: string, target: string): string {
  return target === url ? url : `${url} (redirected to ${withoutQuery(target)})`;
}

function viaRedirect(url: string, target: string): string {
  return target === url ? '' : ` from ${withoutQuery(target)}, where it redirects`;
}

/**
 * A URL for messages, its query left out: the query of a signed CDN or object-store URL
 * is its credential (valid until it expires), which does not belong in logs.
 */
function withoutQuery(url: string): string {
  const at = url.search(/[?#]/);
  return at === -1 ? url : `${url.slice(0, at)}?…`;
}
