/**
 * One attempt at fetching an image, with every limit enforced while it happens:
 *
 * - deadlines: connect, response headers, the idle gap between body chunks (undici's own
 *   timers), and a total deadline for the attempt that also covers time queued for a
 *   connection (an AbortSignal started before the request is made);
 * - a byte cap, checked against Content-Length and again as the body streams;
 * - the X-Robots-Tag opt-out, checked on the headers before the body is read;
 * - a magic-number check on the first bytes (an HTML page served as 200 is not an image);
 * - redirects followed by hand, so each hop is checked: http and https only, at most
 *   MAX_REDIRECTS, no loops, and (each hop a request through the guarded dispatcher) never
 *   to an address the address guard refuses (`blocked_address`, address-guard.ts).
 *
 * Every response body is read to the end, dumped or destroyed: an unread undici body
 * holds its socket forever.
 */
import { request, type Dispatcher } from 'undici';
import type { FetchOptions } from './options.js';
import type { FailureReason } from '../types.js';
import { errorMessage } from '../errors.js';
import { isTransient } from '../reasons.js';
import { BlockedAddressError, createAddressGuard } from './address-guard.js';
import { createDispatcher } from './dispatcher.js';
import { agentToken, robotsDenial } from './robots.js';
import { describeHead, sniffImage, SNIFF_BYTES } from './sniff.js';

export const MAX_REDIRECTS = 5;
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

export type AttemptResult =
  | { readonly ok: true; readonly body: Buffer; readonly status: number }
  | {
      readonly ok: false;
      readonly reason: FailureReason;
      readonly detail: string;
      /** Worth another attempt: the same request may succeed later. */
      readonly transient: boolean;
      /** The HTTP status, when the server answered. */
      readonly status?: number;
      /** The server's Retry-After, in milliseconds. */
      readonly retryAfterMs?: number;
      readonly bytesReceived: number;
    };

export function createAgent(options: FetchOptions): Dispatcher {
  return createDispatcher(options, {
    keepAlive: { timeoutMs: 10_000, maxTimeoutMs: 60_000 },
    guard: createAddressGuard({ publicAddressesOnly: options.publicAddressesOnly }),
  });
}

/**
 * @param abandon aborted when the run gives up on rows in flight (shutdown after the
 * grace period): the attempt ends at once as `interrupted`.
 */
export async function fetchOnce(url: string, agent: Dispatcher, options: FetchOptions, abandon?: AbortSignal): Promise<AttemptResult> {
  const attempt = attemptSignal(options.timeoutMs, abandon);
  try {
    return await attemptFetch(url, agent, options, attempt.signal);
  } finally {
    attempt.dispose();
  }
}

/**
 * One signal for the attempt: aborted by its total deadline or by the run abandoning it.
 * Made by hand rather than with AbortSignal.any, so its timer and its listener on the
 * run's signal are removed as soon as the attempt ends (over 567k rows, nothing piles up).
 */
function attemptSignal(timeoutMs: number, abandon: AbortSignal | undefined): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('attempt deadline', 'TimeoutError')), timeoutMs);
  const onAbandon = () => controller.abort(new DOMException('abandoned at shutdown', 'AbortError'));
  if (abandon?.aborted) onAbandon();
  else abandon?.addEventListener('abort', onAbandon, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      abandon?.removeEventListener('abort', onAbandon);
    },
  };
}

async function attemptFetch(url: string, agent: Dispatcher, options: FetchOptions, deadline: AbortSignal): Promise<AttemptResult> {
  const agentTokens = [agentToken(options.userAgent)];
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
      const blocked = blockedAddress(error);
      // Named with the hop: the row's own URL may be an ordinary image host's.
      if (blocked) return failure('blocked_address', current === url ? blocked.message : `redirected to ${current}: ${blocked.message}`, 0);
      return failure(classify(error, deadline), describeError(error, deadline, options), 0);
    }
    const { statusCode, headers, body } = response;

    if (options.respectRobotsTag && options.disallowedRobotsTags.length > 0) {
      const denial = robotsDenial(headerValues(headers, 'x-robots-tag'), agentTokens, options.disallowedRobotsTags);
      if (denial) {
        discard(body);
        return failure('robots_denied', `X-Robots-Tag ${denial}: the site opts this image out (--disallowed-robots-tags)`, 0, statusCode);
      }
    }

    if (REDIRECT_STATUSES.has(statusCode)) {
      await body.dump().catch(() => {});
      const location = headerValues(headers, 'location')[0];
      if (!location) return failure(`http_${statusCode}`, `HTTP ${statusCode} without a Location header`, 0, statusCode);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        return failure('bad_url', `redirect to an invalid URL ${JSON.stringify(location)}`, 0, statusCode);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        return failure('bad_url', `redirect to ${next.protocol} refused (http and https only)`, 0, statusCode);
      }
      if (visited.has(next.href)) return failure('redirect_loop', `redirect loop back to ${next.href}`, 0, statusCode);
      if (visited.size > MAX_REDIRECTS) return failure('redirect_loop', `more than ${MAX_REDIRECTS} redirects`, 0, statusCode);
      current = next.href;
      continue;
    }

    if (statusCode < 200 || statusCode > 299) {
      await body.dump().catch(() => {});
      const retryAfterMs = parseRetryAfter(headerValues(headers, 'retry-after')[0]);
      return {
        ok: false,
        reason: `http_${statusCode}`,
        detail: `HTTP ${statusCode}${retryAfterMs === undefined ? '' : ` (Retry-After ${Math.ceil(retryAfterMs / 1000)} s)`}`,
        transient: isTransient(`http_${statusCode}`),
        status: statusCode,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        bytesReceived: 0,
      };
    }

    const declared = parseLength(headerValues(headers, 'content-length')[0]);
    if (declared !== undefined && declared > options.maxBytes) {
      discard(body);
      return failure('too_large', `Content-Length ${declared} exceeds --max-bytes ${options.maxBytes}`, 0, statusCode);
    }
    return readBody(body, statusCode, declared, deadline, options);
  }
}

/**
 * Reads a body to its end (or to the first reason to stop), chunk by chunk as the socket
 * delivers them: through the stream's events, not its async iterator, which would cost a
 * promise and a turn of the microtask queue per chunk on the main thread.
 */
function readBody(
  body: Dispatcher.ResponseData['body'],
  status: number,
  declared: number | undefined,
  deadline: AbortSignal,
  options: FetchOptions,
): Promise<AttemptResult> {
  const collected = new BodyBuffer(declared);
  let received = 0;
  let sniffed = false;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const settle = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      body.off('data', onData).off('end', onEnd).off('error', onError);
      resolve(result);
    };
    const stop = (result: AttemptResult) => {
      settle(result);
      discard(body);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > options.maxBytes) return stop(failure('too_large', `body exceeds --max-bytes ${options.maxBytes}`, received, status));
      collected.append(chunk);
      if (!sniffed && received >= SNIFF_BYTES) {
        sniffed = true;
        const verdict = checkHead(collected.head(64), status);
        if (verdict) stop(verdict);
      }
    };
    const onEnd = () => {
      if (declared !== undefined && received < declared) return settle(failure('truncated', `body ended after ${received} of ${declared} bytes`, received, status));
      const data = collected.contents();
      const verdict = sniffed ? undefined : checkHead(data, status);
      settle(verdict ?? { ok: true, body: data, status });
    };
    const onError = (error: unknown) => {
      const short = declared !== undefined && received < declared;
      const reason = deadline.aborted ? deadlineReason(deadline) : short && !isTimeout(error) ? 'truncated' : classify(error, deadline);
      stop(failure(reason, describeError(error, deadline, options, received, declared), received, status));
    };
    body.on('data', onData).once('end', onEnd).once('error', onError);
  });
}

/**
 * A body's bytes in one Buffer. With a Content-Length the Buffer is allocated once at that
 * size and each chunk is copied in as it arrives, so the chunks can be freed at once
 * instead of living until a final concatenation (half the memory per body, one copy).
 * Without one, or if the body is longer than declared, chunks are kept and joined. The
 * body is hashed later, on an image thread (image/task.ts), not here on the main thread.
 */
class BodyBuffer {
  #buffer: Buffer | undefined;
  #chunks: Buffer[] = [];
  #length = 0;

  constructor(declared: number | undefined) {
    if (declared !== undefined && declared > 0) this.#buffer = Buffer.allocUnsafeSlow(declared);
  }

  append(chunk: Buffer): void {
    if (this.#buffer && this.#length + chunk.length <= this.#buffer.length) {
      chunk.copy(this.#buffer, this.#length);
    } else {
      if (this.#buffer) this.#chunks.push(this.#buffer.subarray(0, this.#length));
      this.#buffer = undefined;
      this.#chunks.push(chunk);
    }
    this.#length += chunk.length;
  }

  head(bytes: number): Buffer {
    return this.contents().subarray(0, bytes);
  }

  /**
   * The body so far. Always memory of its own: a chunk is undici's slice of a socket read
   * and Buffer.concat may hand out a slice of Node's shared pool, and neither may be freed
   * by the body's holder (util/release-buffer.ts), so chunks are copied into a new Buffer.
   */
  contents(): Buffer {
    if (this.#buffer) return this.#buffer.subarray(0, this.#length);
    const whole = Buffer.allocUnsafeSlow(this.#length);
    let at = 0;
    for (const chunk of this.#chunks) at += chunk.copy(whole, at);
    this.#buffer = whole;
    this.#chunks = [];
    return whole;
  }
}

/**
 * Abandons a body: its socket is destroyed (a half-read keep-alive connection cannot be
 * reused). Destroying emits an 'error' on the body, which nobody else listens for now.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

function checkHead(head: Buffer, status: number): AttemptResult | undefined {
  if (sniffImage(head)) return undefined;
  const detail = head.length === 0 ? 'empty body' : `body is not an image (starts with ${describeHead(head)})`;
  return failure('not_image', detail, head.length, status);
}

function failure(reason: FailureReason, detail: string, bytesReceived: number, status?: number): AttemptResult {
  return {
    ok: false,
    reason,
    detail,
    transient: isTransient(reason),
    ...(status === undefined ? {} : { status }),
    bytesReceived,
  };
}

/** Which of the combined signals fired: the attempt's own deadline, or the run's shutdown. */
function deadlineReason(deadline: AbortSignal): FailureReason {
  const reason: unknown = deadline.reason;
  return reason instanceof Error && reason.name === 'TimeoutError' ? 'timeout_total' : 'interrupted';
}

/** The address guard's refusal, if that is what failed the request (address-guard.ts). */
function blockedAddress(error: unknown): BlockedAddressError | undefined {
  if (error instanceof BlockedAddressError) return error;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause instanceof BlockedAddressError ? cause : undefined;
}

function errorCode(error: unknown): string | undefined {
  const own = (error as { code?: unknown })?.code;
  if (typeof own === 'string') return own;
  const cause = (error as { cause?: { code?: unknown } })?.cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

const TIMEOUT_CODES: Readonly<Record<string, FailureReason>> = {
  UND_ERR_CONNECT_TIMEOUT: 'timeout_connect',
  UND_ERR_HEADERS_TIMEOUT: 'timeout_headers',
  UND_ERR_BODY_TIMEOUT: 'timeout_body',
};

function isTimeout(error: unknown): boolean {
  return (errorCode(error) ?? '') in TIMEOUT_CODES;
}

function classify(error: unknown, deadline: AbortSignal): FailureReason {
  if (deadline.aborted) return deadlineReason(deadline);
  const code = errorCode(error) ?? '';
  const timeout = TIMEOUT_CODES[code];
  if (timeout) return timeout;
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'truncated';
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL') return 'bad_url';
  return 'connection_error';
}

function describeError(error: unknown, deadline: AbortSignal, options: FetchOptions, received?: number, declared?: number): string {
  const progress = received === undefined ? '' : ` after ${received}${declared === undefined ? '' : ` of ${declared}`} bytes`;
  if (deadline.aborted && deadlineReason(deadline) === 'interrupted') return `abandoned at shutdown${progress}`;
  if (deadline.aborted) return `no complete response within --timeout ${options.timeoutMs / 1000} s${progress}`;
  const code = errorCode(error);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `no connection within --connect-timeout ${options.connectTimeoutMs / 1000} s`;
    case 'UND_ERR_HEADERS_TIMEOUT':
      return `no response headers within --headers-timeout ${options.headersTimeoutMs / 1000} s`;
    case 'UND_ERR_BODY_TIMEOUT':
      return `body stalled for --idle-timeout ${options.idleTimeoutMs / 1000} s${progress}`;
  }
  const hint = code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code) ? '; --insecure skips certificate checks' : '';
  return `${errorMessage(error)}${code ? ` (${code})` : ''}${progress}${hint}`;
}

function headerValues(headers: Dispatcher.ResponseData['headers'], name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
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
