/**
 * Per-host politeness: how many requests one host may have in flight, how fast new ones
 * may start, and a pause when the host says "slow down".
 *
 * Two limits adapt per host, both the way TCP adapts its congestion window (AIMD:
 * additive increase, multiplicative decrease; RFC 5681):
 *
 * - **In flight.** Each success raises the limit by 1/limit (about +1 per round of
 *   `limit` requests); each 429 or 503 halves it.
 * - **Pace** (requests started per second, spaced 1 / pace apart: a token bucket of depth
 *   one). A host starts unpaced: nothing is spaced until it says slow down, so a server
 *   that never does is never slowed. Each 429 or 503 without Retry-After sets the pace to
 *   0.7 x the rate the host was actually accepting (the best rate of answers it gave
 *   without objection over 2 s, in the last 10 s; not the pace we asked for or `--rate`):
 *   against a limiter of 4 requests/s, one cut lands just under 4 whatever the pace was
 *   before, and slow-downs that come whatever the rate (a flaky server) cannot drive it
 *   down cut after cut. 0.7 is CUBIC's decrease (RFC 9438), gentler than Reno's 0.5: a
 *   rate limiter answers at once, so the signal is exact and a smaller cut loses less.
 *   After the first cut the pace grows as in TCP's slow start, by a fixed step per
 *   success (+2 requests/s, so it triples each second), because the first estimate is
 *   poor: an unpaced start sees a burst, not a rate. From the second cut on it grows by
 *   10% of the rate taken at the last cut per second of successes, so it returns to that
 *   rate in 3 s, probes past it until the host says slow down again, and is cut again: a
 *   sawtooth between 0.7 and 1 of what the host allows, at any scale. The pace never grows
 *   past twice what the host accepts (growth that is not used tests nothing), nor past
 *   `--rate`.
 *
 * Decreases happen once per round: requests that started before the last cut do not cut
 * again (they were sent at the old rate). A Retry-After pauses the whole host, not only
 * the request that got it, so a rate-limited CDN sees fewer requests, not a retry storm.
 */
import { RateMeter } from './rate-meter.js';

export interface HostGateOptions {
  /** The most requests in flight to one host. */
  readonly maxPerHost: number;
  /** Requests started per second per host, a hard ceiling; 0 for none. */
  readonly ratePerSecond: number;
}

/**
 * How a request went, for the gate: `ok` (the image came), `answered` (another answer the
 * host gave without objection: 404, an HTML page, a truncated body), `slow_down` (429 or
 * 503), `other` (no answer: a timeout, a reset).
 */
export type RequestOutcome = 'ok' | 'answered' | 'slow_down' | 'other';

export interface Permit {
  /** Reports how the request went and frees its place. Call exactly once. */
  release(outcome: RequestOutcome, retryAfterMs?: number): void;
}

/** What the gate knows of one host, for progress lines and metrics. */
export interface HostStatus {
  readonly host: string;
  readonly inFlight: number;
  /** The current in-flight limit. */
  readonly limit: number;
  /** Requests started per second at most now; undefined while the host is unpaced. */
  readonly pace: number | undefined;
  /** 429 and 503 answers so far. */
  readonly slowDowns: number;
}

/** The multiplicative decrease of the pace (CUBIC's beta). */
const PACE_DECREASE = 0.7;
/** Slow start: requests/s gained per success (so the pace triples each second). */
const SLOW_START_GAIN = 2;
/** After that, the share of the last accepted rate gained per second of successes. */
const PACE_INCREASE = 0.1;
/** The span the accepted rate is measured over. */
const RATE_WINDOW_MS = 2_000;
/** How far back the best accepted rate is remembered (what a cut is taken from). */
const PEAK_HORIZON_MS = 10_000;
/** The slowest pace: one request a minute, so a host that refuses everything is still probed. */
const MIN_PACE = 1 / 60;

interface HostState {
  readonly host: string;
  limit: number;
  inFlight: number;
  /** Adaptive requests/s, or undefined until the host first says slow down. */
  pace: number | undefined;
  /** The rate the host accepted when it last said slow down; undefined in slow start. */
  acceptedAtCut: number | undefined;
  /** Requests started since the last decrease; only they may decrease again. */
  epoch: number;
  nextStartAt: number;
  pausedUntil: number;
  /** Answers the host gave without objection (ok or answered). */
  readonly accepted: RateMeter;
  slowDowns: number;
  readonly waiting: Array<() => void>;
  timer: NodeJS.Timeout | undefined;
}

export class HostGate {
  readonly #options: HostGateOptions;
  readonly #hosts = new Map<string, HostState>();

  constructor(options: HostGateOptions) {
    this.#options = options;
  }

  /** The current in-flight limit for a host (for tests). */
  limitOf(host: string): number {
    return Math.floor(this.#hosts.get(host)?.limit ?? this.#options.maxPerHost);
  }

  /** Every host that has been asked for something, busiest first. */
  status(): HostStatus[] {
    return [...this.#hosts.values()]
      .map(({ host, inFlight, limit, pace, slowDowns }) => ({ host, inFlight, limit: Math.floor(limit), pace: this.#effectivePace(pace), slowDowns }))
      .sort((a, b) => b.inFlight - a.inFlight || b.slowDowns - a.slowDowns);
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
    const now = Date.now();
    state.inFlight++;
    state.accepted.start(now);
    const pace = this.#effectivePace(state.pace);
    if (pace !== undefined) state.nextStartAt = Math.max(now, state.nextStartAt) + 1000 / pace;
    const startedIn = state.epoch;
    let released = false;
    return {
      release: (outcome, retryAfterMs) => {
        if (released) return;
        released = true;
        state.inFlight--;
        if (outcome === 'slow_down') this.#slowDown(state, startedIn, retryAfterMs);
        else if (outcome === 'ok' || outcome === 'answered') this.#accepted(state, outcome);
        this.#wakeAll(state);
      },
    };
  }

  #slowDown(state: HostState, startedIn: number, retryAfterMs: number | undefined): void {
    state.slowDowns++;
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      // The host said how long: wait exactly that, all requests together.
      state.pausedUntil = Math.max(state.pausedUntil, Date.now() + retryAfterMs);
    }
    if (startedIn !== state.epoch) return; // sent before the last cut: already answered for
    state.epoch++;
    state.limit = Math.max(1, state.limit / 2);
    if (retryAfterMs === undefined || retryAfterMs <= 0) {
      // From the best rate the host took lately: slow-downs that come whatever the rate
      // (a flaky server) cannot drive the pace down cut after cut.
      const accepted = state.accepted.peak(Date.now());
      const base = accepted > 0 ? accepted : (state.pace ?? 1);
      // The first cut ends the unpaced start and begins slow start; later ones end it.
      if (state.pace !== undefined) state.acceptedAtCut = base;
      state.pace = Math.max(MIN_PACE, PACE_DECREASE * base);
      // The next start waits one new spacing: the host's bucket is full right now.
      state.nextStartAt = Date.now() + 1000 / state.pace;
    }
  }

  /** The host answered without objection: it counts toward the rate it accepts, and an image also grows the limits. */
  #accepted(state: HostState, outcome: 'ok' | 'answered'): void {
    const now = Date.now();
    state.accepted.record(now);
    if (outcome !== 'ok') return;
    state.limit = Math.min(this.#options.maxPerHost, state.limit + 1 / state.limit);
    if (state.pace === undefined || state.pace >= 2 * state.accepted.current(now) + 1) return;
    state.pace += state.acceptedAtCut === undefined ? SLOW_START_GAIN : (PACE_INCREASE * state.acceptedAtCut) / state.pace;
  }

  /** The adaptive pace under the `--rate` ceiling; undefined when neither limits. */
  #effectivePace(pace: number | undefined): number | undefined {
    const ceiling = this.#options.ratePerSecond > 0 ? this.#options.ratePerSecond : undefined;
    if (pace === undefined) return ceiling;
    return ceiling === undefined ? pace : Math.min(pace, ceiling);
  }

  #state(host: string): HostState {
    let state = this.#hosts.get(host);
    if (!state) {
      state = {
        host,
        limit: this.#options.maxPerHost,
        inFlight: 0,
        pace: undefined,
        acceptedAtCut: undefined,
        epoch: 0,
        nextStartAt: 0,
        pausedUntil: 0,
        accepted: new RateMeter(RATE_WINDOW_MS, PEAK_HORIZON_MS),
        slowDowns: 0,
        waiting: [],
        timer: undefined,
      };
      this.#hosts.set(host, state);
    }
    return state;
  }

  #mayStart(state: HostState): boolean {
    const now = Date.now();
    return state.inFlight < Math.floor(state.limit) && now >= state.pausedUntil && now >= state.nextStartAt;
  }

  /** Wakes waiters when a pause or the pace's spacing ends (a release wakes them too). */
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
