/**
 * Fetches one URL with retries: transient failures (timeouts, resets, 5xx, 429, short
 * bodies) are tried again after an exponential backoff with jitter, never sooner than
 * the server's Retry-After; permanent ones (404, not an image, too large) are not.
 * One keep-alive Agent is shared by every request of the run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FetchOptions } from '../options.js';
import type { FailureReason } from '../types.js';
import { createAgent, fetchOnce } from './http.js';

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
  fetch(url: string): Promise<FetchResult>;
  close(): Promise<void>;
}

/** The longest wait between attempts, whatever Retry-After says. */
const MAX_DELAY_MS = 5 * 60_000;

export function createFetcher(options: FetchOptions): Fetcher {
  const agent = createAgent(options);
  return {
    async fetch(url) {
      let bytesFetched = 0;
      for (let attempt = 1; ; attempt++) {
        const result = await fetchOnce(url, agent, options);
        if (result.ok) return { ok: true, body: result.body, attempts: attempt, bytesFetched: bytesFetched + result.body.length };
        bytesFetched += result.bytesReceived;
        if (!result.transient || attempt > options.retries) {
          const detail = attempt > 1 ? `${result.detail} (after ${attempt} attempts)` : result.detail;
          return { ok: false, reason: result.reason, detail, attempts: attempt, bytesFetched };
        }
        await sleep(backoffMs(attempt, options.retryDelayMs, result.retryAfterMs));
      }
    },
    async close() {
      await agent.close();
    },
  };
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread out. */
export function backoffMs(attempt: number, baseMs: number, retryAfterMs = 0): number {
  const exponential = Math.min(MAX_DELAY_MS, baseMs * 2 ** (attempt - 1));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(MAX_DELAY_MS, Math.max(jittered, retryAfterMs));
}
