/**
 * One HTTP GET of an image, with every limit enforced while it happens: a total deadline
 * (covering time queued for a connection), a byte cap checked as the body streams, a
 * magic-number check on the first bytes, and redirects followed by hand so each hop is
 * checked (http and https only, no loops, at most MAX_REDIRECTS).
 *
 * Every response body is either read to the end, dumped or destroyed: an unread undici
 * body holds its socket forever.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { FetchOptions } from '../options.js';
import type { FailureReason } from '../types.js';
import { errorMessage } from '../errors.js';
import { describeHead, sniffImage, SNIFF_BYTES } from './sniff.js';

export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export type AttemptResult =
  | { readonly ok: true; readonly body: Buffer }
  | {
      readonly ok: false;
      readonly reason: FailureReason;
      readonly detail: string;
      /** Worth another attempt: the same request may succeed later. */
      readonly transient: boolean;
      /** The server's Retry-After, in milliseconds. */
      readonly retryAfterMs?: number;
      readonly bytesReceived: number;
    };

export function createAgent(options: FetchOptions): Agent {
  return new Agent({
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: Math.min(options.timeoutMs, 30_000) },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
}

export async function fetchOnce(url: string, agent: Dispatcher, options: FetchOptions): Promise<AttemptResult> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const visited = new Set<string>();
  let current = url;
  for (;;) {
    visited.add(current);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(current, {
        method: 'GET',
        dispatcher: agent,
        signal: deadline,
        headers: { 'user-agent': options.userAgent, accept: 'image/*,*/*;q=0.8' },
      });
    } catch (error) {
      return failure(classify(error, deadline, false), describeError(error, deadline, options), 0);
    }
    const { statusCode, headers, body } = response;

    if (REDIRECT_STATUSES.has(statusCode)) {
      await body.dump().catch(() => {});
      const location = header(headers, 'location');
      if (!location) return failure(`http_${statusCode}`, `HTTP ${statusCode} without a Location header`, 0);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        return failure('bad_url', `redirect to an invalid URL ${JSON.stringify(location)}`, 0);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        return failure('bad_url', `redirect to ${next.protocol} is refused (http and https only)`, 0);
      }
      if (visited.has(next.href)) return failure('redirect_loop', `redirect loop back to ${next.href}`, 0);
      if (visited.size > MAX_REDIRECTS) {
        return failure('too_many_redirects', `more than ${MAX_REDIRECTS} redirects`, 0);
      }
      current = next.href;
      continue;
    }

    if (statusCode < 200 || statusCode > 299) {
      await body.dump().catch(() => {});
      const transient = statusCode >= 500 || statusCode === 429 || statusCode === 408;
      const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'));
      return {
        ok: false,
        reason: `http_${statusCode}`,
        detail: `HTTP ${statusCode}`,
        transient,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        bytesReceived: 0,
      };
    }

    const declared = parseLength(header(headers, 'content-length'));
    if (declared !== undefined && declared > options.maxBytes) {
      body.destroy();
      return failure('too_large', `Content-Length ${declared} exceeds --max-bytes ${options.maxBytes}`, 0);
    }
    return readBody(body, declared, deadline, options);
  }
}

async function readBody(
  body: Dispatcher.ResponseData['body'],
  declared: number | undefined,
  deadline: AbortSignal,
  options: FetchOptions,
): Promise<AttemptResult> {
  const chunks: Buffer[] = [];
  let received = 0;
  let sniffed = false;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      received += chunk.length;
      if (received > options.maxBytes) {
        body.destroy();
        return failure('too_large', `body exceeds --max-bytes ${options.maxBytes}`, received);
      }
      if (!sniffed && received >= SNIFF_BYTES) {
        sniffed = true;
        const verdict = checkHead(Buffer.concat(chunks, Math.min(received, 64)));
        if (verdict) {
          body.destroy();
          return verdict;
        }
      }
    }
  } catch (error) {
    body.destroy();
    const reason = classify(error, deadline, true, declared !== undefined && received < declared);
    return failure(reason, describeError(error, deadline, options, received, declared), received);
  }
  if (declared !== undefined && received < declared) {
    return failure('truncated', `body ended after ${received} of ${declared} bytes`, received);
  }
  const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
  if (!sniffed) {
    const verdict = checkHead(data);
    if (verdict) return verdict;
  }
  return { ok: true, body: data };
}

function checkHead(head: Buffer): AttemptResult | undefined {
  if (sniffImage(head)) return undefined;
  const detail = head.length === 0 ? 'empty body' : `body is not an image (starts with ${describeHead(head)})`;
  return failure('not_image', detail, head.length);
}

const TRANSIENT: ReadonlySet<FailureReason> = new Set(['timeout', 'truncated', 'connection_error']);

function failure(reason: FailureReason, detail: string, bytesReceived: number): AttemptResult {
  return { ok: false, reason, detail, transient: TRANSIENT.has(reason), bytesReceived };
}

function errorCode(error: unknown): string | undefined {
  const own = (error as { code?: unknown })?.code;
  if (typeof own === 'string') return own;
  const cause = (error as { cause?: { code?: unknown } })?.cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

function classify(error: unknown, deadline: AbortSignal, inBody: boolean, short = false): FailureReason {
  const code = errorCode(error);
  if (deadline.aborted) return 'timeout';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout';
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return 'truncated';
    case 'UND_ERR_INVALID_ARG':
      return 'bad_url';
  }
  return inBody && short ? 'truncated' : 'connection_error';
}

function describeError(
  error: unknown,
  deadline: AbortSignal,
  options: FetchOptions,
  received?: number,
  declared?: number,
): string {
  if (deadline.aborted) return `no complete response within --timeout ${options.timeoutMs / 1000} s`;
  const code = errorCode(error);
  const progress = received === undefined ? '' : ` after ${received}${declared === undefined ? '' : ` of ${declared}`} bytes`;
  return `${errorMessage(error)}${code ? ` (${code})` : ''}${progress}`;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** Retry-After is either delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
