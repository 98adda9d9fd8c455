/**
 * Input read over HTTP(S): `--input https://.../rows.parquet` with no download step.
 *
 * - Parquet is read through HTTP range requests: `HttpRangeFile` looks like the Blob that
 *   parquet-wasm reads a local file through (`size`, `slice(start, end)`), so the reader
 *   fetches the footer and then only the column chunks (and pages) of the rows it needs.
 * - NDJSON and CSV are streamed from one GET.
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

/** A remote file read by byte ranges, shaped like the Blob parquet-wasm reads files through. */
export class HttpRangeFile {
  readonly size: number;
  readonly #url: string;
  readonly #agent: Dispatcher;
  readonly #options: HttpInputOptions;

  private constructor(url: string, size: number, agent: Dispatcher, options: HttpInputOptions) {
    this.#url = url;
    this.size = size;
    this.#agent = agent;
    this.#options = options;
  }

  /** Learns the file's size with a one-byte range request, which also proves ranges work. */
  static async open(url: string, agent: Dispatcher, options: HttpInputOptions): Promise<HttpRangeFile> {
    const { statusCode: status, headers, body } = await withRetries(url, options, (signal) =>
      request(url, { dispatcher: agent, signal, headers: { 'user-agent': options.userAgent, range: 'bytes=0-0' } }),
    );
    await body.dump();
    if (status >= 400) throw new HttpInputError(`cannot read input ${url}: HTTP ${status}`);
    const total = /\/(\d+)$/.exec(String(headers['content-range'] ?? ''))?.[1];
    if (status !== 206 || total === undefined) {
      throw new HttpInputError(`${url} does not answer range requests (HTTP ${status}), which reading Parquet over HTTP needs: download it and pass the file`);
    }
    return new HttpRangeFile(url, Number(total), agent, options);
  }

  slice(start = 0, end = this.size): { arrayBuffer(): Promise<ArrayBuffer> } {
    const from = Math.max(0, start);
    const to = Math.min(this.size, end);
    return { arrayBuffer: () => this.#read(from, to) };
  }

  async #read(start: number, end: number): Promise<ArrayBuffer> {
    if (end <= start) return new ArrayBuffer(0);
    const url = this.#url;
    const { statusCode: status, body } = await withRetries(url, this.#options, (signal) =>
      request(url, { dispatcher: this.#agent, signal, headers: { 'user-agent': this.#options.userAgent, range: `bytes=${start}-${end - 1}` } }),
    );
    if (status !== 206) {
      await body.dump();
      throw new HttpInputError(`${url}: bytes ${start}-${end - 1} answered HTTP ${status} instead of 206`);
    }
    const bytes = new Uint8Array(await body.arrayBuffer());
    if (bytes.length !== end - start) throw new HttpInputError(`${url}: bytes ${start}-${end - 1} came back ${bytes.length} bytes long`);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
}

/** The body of `url` as a stream (NDJSON, CSV), after a 200. */
export async function openHttpText(url: string, agent: Dispatcher, options: HttpInputOptions): Promise<Readable> {
  const { statusCode: status, body } = await withRetries(url, options, (signal) => request(url, { dispatcher: agent, signal, headers: { 'user-agent': options.userAgent } }), false);
  if (status !== 200) {
    await body.dump();
    throw new HttpInputError(`cannot read input ${url}: HTTP ${status}`);
  }
  return body;
}

/**
 * One request, tried again after transient failures. With `wholeBody` (ranges), the total
 * deadline covers the body too; a streamed body (text) has only the idle deadline, since
 * the whole input may take hours to read.
 */
async function withRetries(url: string, options: HttpInputOptions, send: (signal: AbortSignal | undefined) => Promise<Dispatcher.ResponseData>, wholeBody = true): Promise<Dispatcher.ResponseData> {
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
    if (attempt > options.retries) throw new HttpInputError(`cannot read input ${url}: ${problem} (after ${attempt} attempts)`);
    await sleep(backoffMs(attempt, options.retryDelayMs));
  }
}
