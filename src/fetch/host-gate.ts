/**
 * Per-host politeness: how many requests one host may have in flight, how fast new ones
 * may start, and a pause when the host says "slow down".
 *
 * The in-flight limit follows AIMD, as TCP does: each success raises it by 1/limit (about
 * +1 per round of `limit` requests), each 429 or 503 halves it, once per round (requests
 * that started before the last cut do not cut again). A Retry-After pauses the whole host,
 * not only the request that got it, so a rate-limited CDN sees fewer requests, not a
 * retry storm.
 */
export interface HostGateOptions {
  /** The most requests in flight to one host. */
  readonly maxPerHost: number;
  /** Requests started per second per host; 0 for no limit. */
  readonly ratePerSecond: number;
}

export interface Permit {
  /** Reports how the request went and frees its place. Call exactly once. */
  release(outcome: 'ok' | 'slow_down' | 'other', retryAfterMs?: number): void;
}

interface HostState {
  limit: number;
  inFlight: number;
  /** Requests started since the last decrease; only they may decrease again. */
  epoch: number;
  nextStartAt: number;
  pausedUntil: number;
  readonly waiting: Array<() => void>;
  timer: NodeJS.Timeout | undefined;
}

export class HostGate {
  readonly #options: HostGateOptions;
  readonly #hosts = new Map<string, HostState>();

  constructor(options: HostGateOptions) {
    this.#options = options;
  }

  /** The current in-flight limit for a host (for progress and tests). */
  limitOf(host: string): number {
    return Math.floor(this.#hosts.get(host)?.limit ?? this.#options.maxPerHost);
  }

  async acquire(host: string, signal?: AbortSignal): Promise<Permit> {
    const state = this.#state(host);
    while (!this.#mayStart(state)) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        state.waiting.push(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#schedule(state);
      });
    }
    signal?.throwIfAborted();
    state.inFlight++;
    if (this.#options.ratePerSecond > 0) {
      state.nextStartAt = Math.max(Date.now(), state.nextStartAt) + 1000 / this.#options.ratePerSecond;
    }
    const startedIn = state.epoch;
    let released = false;
    return {
      release: (outcome, retryAfterMs) => {
        if (released) return;
        released = true;
        state.inFlight--;
        if (outcome === 'slow_down') {
          if (startedIn === state.epoch) {
            state.limit = Math.max(1, state.limit / 2);
            state.epoch++;
          }
          if (retryAfterMs !== undefined && retryAfterMs > 0) {
            state.pausedUntil = Math.max(state.pausedUntil, Date.now() + retryAfterMs);
          }
        } else if (outcome === 'ok') {
          state.limit = Math.min(this.#options.maxPerHost, state.limit + 1 / state.limit);
        }
        this.#wakeAll(state);
      },
    };
  }

  #state(host: string): HostState {
    let state = this.#hosts.get(host);
    if (!state) {
      state = { limit: this.#options.maxPerHost, inFlight: 0, epoch: 0, nextStartAt: 0, pausedUntil: 0, waiting: [], timer: undefined };
      this.#hosts.set(host, state);
    }
    return state;
  }

  #mayStart(state: HostState): boolean {
    const now = Date.now();
    return state.inFlight < Math.floor(state.limit) && now >= state.pausedUntil && now >= state.nextStartAt;
  }

  /** Wakes waiters when a pause or the rate spacing ends (a release wakes them too). */
  #schedule(state: HostState): void {
    const wait = Math.max(state.pausedUntil, state.nextStartAt) - Date.now();
    if (wait <= 0 || state.timer) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.#wakeAll(state);
    }, wait);
  }

  #wakeAll(state: HostState): void {
    for (const wake of state.waiting.splice(0)) wake();
  }
}
