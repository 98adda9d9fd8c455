/**
 * Fetches one URL politely and with retries. Transient failures (timeouts, resets, 5xx,
 * short bodies) are tried again `retries` times after an exponential backoff with jitter,
 * never sooner than the server's Retry-After; a 429 or 503 ("slow down") is not a failure
 * of the sample: it waits at the host's gate and tries again until `patienceMs` have
 * passed since its first attempt. Permanent failures (404, 410, 403, not an image, too
 * large, opted out) are not tried again. Every attempt passes the host's gate (per-host limit, rate,
 * pause after 429). One keep-alive Agent serves every request of the run.
 *
 * A URL that names a file of this machine is read from disk instead (local-file.ts), only
 * with `--allow-local-files`: one place, so the stages do not know the difference.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FetchOptions } from './options.js';
import { errorMessage } from '../errors.js';
import type { FailureReason } from '../types.js';
import { HostGate, type HostStatus, type Permit, type RequestOutcome } from './host-gate.js';
import { createAgent, fetchOnce } from './http.js';
import { isLocalPath, readLocalFile } from './local-file.js';

export type FetchResult =
  | { readonly ok: true; readonly body: Buffer; readonly attempts: number; readonly bytesFetched: number }
  | {
      readonly ok: false;
      readonly reason: FailureReason;
      readonly detail: string;
      readonly attempts: number;
      readonly bytesFetched: number;
    };

export interface Fetcher {
  /** Aborting `signal` ends the request or the wait for a retry at once, as `interrupted`. */
  fetch(url: string, signal?: AbortSignal): Promise<FetchResult>;
  hosts(): HostStatus[];
  close(): Promise<void>;
}

/**
 * Limits that other processes share (queue workers, see queue/shared-limits.ts), passed
 * after the run's own gate: a place is held for the request's duration.
 */
export interface SharedHostLimits {
  acquire(host: string, signal?: AbortSignal): Promise<{ release(outcome: RequestOutcome, retryAfterMs?: number): Promise<void> }>;
}

/** The longest wait between attempts, whatever Retry-After says. */
const MAX_DELAY_MS = 10 * 60_000;
/** Statuses that mean "too many requests from you": the host's limit comes down. */
const SLOW_DOWN_STATUSES = new Set([429, 503]);

export function createFetcher(options: FetchOptions, shared?: SharedHostLimits): Fetcher {
  const agent = createAgent(options);
  const gate = new HostGate({ maxPerHost: options.perHostConcurrency, ratePerSecond: options.ratePerSecond });
  return {
    async fetch(url, abandon) {
      if (isLocalPath(url)) {
        if (abandon?.aborted) return { ok: false, reason: 'interrupted', detail: 'abandoned at shutdown', attempts: 0, bytesFetched: 0 };
        const read = await readLocalFile(url, options.allowLocalFiles, options.maxBytes);
        // Without the flag nothing was tried.
        return { ...read, attempts: options.allowLocalFiles ? 1 : 0 };
      }
      const host = new URL(url).host;
      const startedAt = Date.now();
      let bytesFetched = 0;
      let retries = 0;
      const interrupted = (attempts: number): FetchResult => ({
        ok: false, reason: 'interrupted', detail: 'abandoned at shutdown', attempts, bytesFetched,
      });
      for (let attempt = 1; ; attempt++) {
        if (abandon?.aborted) return interrupted(attempt - 1);
        let permit: Permit;
        try {
          permit = await both(gate, shared, host, abandon);
        } catch (error) {
          // Only a run that is stopping abandons a wait; anything else is the limits' own failure.
          if (abandon?.aborted) return interrupted(attempt - 1);
          return { ok: false, reason: 'limits_error', detail: `the host limits failed: ${errorMessage(error)}`, attempts: attempt - 1, bytesFetched };
        }
        const result = await fetchOnce(url, agent, options, abandon).catch((error: unknown) => {
          permit.release('other');
          throw error;
        });
        if (result.ok) {
          permit.release('ok');
          return { ok: true, body: result.body, attempts: attempt, bytesFetched: bytesFetched + result.body.length };
        }
        const toldToWait = result.status !== undefined && SLOW_DOWN_STATUSES.has(result.status);
        permit.release(toldToWait ? 'slow_down' : result.status === undefined ? 'other' : 'answered', result.retryAfterMs);
        bytesFetched += result.bytesReceived;
        const fail = (why: string): FetchResult => ({ ok: false, reason: result.reason, detail: `${result.detail}${why}`, attempts: attempt, bytesFetched });
        if (!result.transient) return fail(attempt > 1 ? ` (after ${attempt} attempts)` : '');
        if (toldToWait) {
          // Being told to wait is no fault of the sample: it waits its turn at the host's
          // gate (paused or paced), with no --retries spent, for as long as --patience.
          const waited = Date.now() - startedAt;
          if (waited >= options.patienceMs) return fail(` (still told to wait after ${Math.round(waited / 1000)} s, ${attempt} attempts; --patience)`);
          continue;
        }
        if (++retries > options.retries) return fail(` (after ${attempt} attempts)`);
        try {
          await sleep(backoffMs(retries, options.retryDelayMs, result.retryAfterMs), undefined, { signal: abandon });
        } catch {
          return interrupted(attempt);
        }
      }
    },
    /** The hosts asked so far: in flight, limits, pace, slow-downs (progress and metrics). */
    hosts: () => gate.status(),
    async close() {
      await agent.close();
    },
  };
}

/** A place at the run's own gate, then one under the shared limits, released together. */
async function both(gate: HostGate, shared: SharedHostLimits | undefined, host: string, signal: AbortSignal | undefined): Promise<Permit> {
  const own = await gate.acquire(host, signal);
  if (!shared) return own;
  let place;
  try {
    place = await shared.acquire(host, signal);
  } catch (error) {
    own.release('other');
    throw error;
  }
  return {
    release(outcome, retryAfterMs) {
      own.release(outcome, retryAfterMs);
      // Not awaited: the sample need not wait for Redis to hear it is done.
      void place.release(outcome, retryAfterMs).catch(() => {});
    },
  };
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread out. */
export function backoffMs(attempt: number, baseMs: number, retryAfterMs = 0): number {
  const exponential = Math.min(MAX_DELAY_MS, baseMs * 2 ** (attempt - 1));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(MAX_DELAY_MS, Math.max(jittered, retryAfterMs));
}
