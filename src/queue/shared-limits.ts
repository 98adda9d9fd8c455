/**
 * Politeness that holds across every worker of a queue, in Redis, so ten workers are not
 * ten times the load on a photo host. Each request passes the worker's own gate
 * (host-gate.ts: its in-flight limit and the pace it adapts to 429s), then these:
 *
 * - **A pause every worker obeys.** A 429 or 503 seen by any worker pauses the host for
 *   all of them: for its Retry-After, or at least a second. Each worker's own pace is cut
 *   as well, so together they slow down the way TCP flows sharing a link do.
 * - **In flight:** at most `--per-host-concurrency` requests to a host from all workers
 *   together: a Redis semaphore (redis-semaphore). Each place is a lease that expires
 *   after the request's deadline, so a killed worker's places come back by themselves.
 * - **`--rate`:** at most that many requests started per second to a host from all
 *   workers together (rate-limiter-flexible's Redis limiter, spread evenly over each
 *   second rather than in a burst at its start).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { Semaphore } from 'redis-semaphore';
import type { SharedHostLimits } from '../fetch/fetcher.js';
import type { FetchOptions } from '../fetch/options.js';
import type { QueueKeys } from './connection.js';

/** The shortest shared pause after a slow-down without Retry-After. */
const MIN_PAUSE_MS = 1_000;
/** How often a request waiting for a place in flight asks again. */
const RETRY_INTERVAL_MS = 20;

export function createSharedHostLimits(redis: Redis, keys: QueueKeys, options: FetchOptions): SharedHostLimits {
  const rate = options.ratePerSecond > 0 ? rateLimiter(redis, keys, options.ratePerSecond) : undefined;
  // A request holds its place for at most its own deadline; the margin covers clocks.
  const leaseMs = options.timeoutMs + 10_000;

  return {
    async acquire(host, signal) {
      const pause = `${keys.host(host)}:pause`;
      for (;;) {
        const left = await redis.pttl(pause);
        if (left <= 0) break;
        await sleep(left, undefined, { signal });
      }
      if (rate) {
        for (;;) {
          try {
            await rate.consume(host);
            break;
          } catch (rejection) {
            if (!(rejection instanceof RateLimiterRes)) throw rejection;
            await sleep(Math.max(1, rejection.msBeforeNext), undefined, { signal });
          }
        }
      }
      const place = new Semaphore(redis, `${keys.host(host)}:in-flight`, options.perHostConcurrency, {
        lockTimeout: leaseMs,
        acquireTimeout: Number.MAX_SAFE_INTEGER,
        retryInterval: RETRY_INTERVAL_MS,
        refreshInterval: 0,
      });
      await place.acquire(signal);
      return {
        async release(outcome, retryAfterMs) {
          await place.release();
          if (outcome === 'slow_down') await redis.set(pause, '1', 'PX', Math.max(MIN_PAUSE_MS, retryAfterMs ?? 0));
        },
      };
    },
  };
}

/** `--rate` for all workers: `points` starts per `duration` whole seconds (Redis expires keys in seconds). */
function rateLimiter(redis: Redis, keys: QueueKeys, perSecond: number): RateLimiterRedis {
  const duration = Math.max(1, Math.ceil(1 / perSecond));
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${keys.host('')}rate`,
    points: Math.max(1, Math.floor(perSecond * duration)),
    duration,
    execEvenly: true,
  });
}
