/**
 * How images are fetched: concurrency, politeness, deadlines, limits, identity and
 * connection settings. `resolveFetchOptions` fills the defaults and checks a caller's
 * partial once.
 */
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { atLeastZero, defined, integer } from '../util/validate.js';
import type { ConnectionOptions } from './dispatcher.js';
import { DEFAULT_DISALLOWED_ROBOTS_TAGS } from './robots.js';

export interface FetchOptions extends ConnectionOptions {
  /** Requests in flight at once, over all hosts. */
  readonly concurrency: number;
  /** Requests in flight at once to one host (the starting point of its AIMD limit). */
  readonly perHostConcurrency: number;
  /** Requests started per second per host; 0 for no limit. */
  readonly ratePerSecond: number;
  /** Total deadline for one attempt, including time queued for a connection, in milliseconds. */
  readonly timeoutMs: number;
  /** A body larger than this is abandoned while it streams. */
  readonly maxBytes: number;
  /** Extra attempts after a transient failure (timeouts, resets, 5xx, truncated bodies). */
  readonly retries: number;
  /** How long one sample may keep being told to wait (429, 503) before it fails, in milliseconds. */
  readonly patienceMs: number;
  /** The first backoff before a retry; each further retry doubles it (with jitter). */
  readonly retryDelayMs: number;
  readonly userAgent: string;
  /** Honour the X-Robots-Tag opt-out (false: `--ignore-robots-tag`). */
  readonly respectRobotsTag: boolean;
  /** X-Robots-Tag directives that opt an image out, lower case. */
  readonly disallowedRobotsTags: readonly string[];
  /** Ask imgix-style CDNs on these hosts for an image already scaled near the target. */
  readonly cdnResizeHosts: readonly string[];
  /** `--http2`: offer HTTP/2 to HTTPS hosts. */
  readonly http2: boolean;
  /**
   * `--public-addresses-only`: refuse loopback, private, CGNAT and unique-local addresses
   * too, not only link-local (cloud metadata), unspecified and multicast ones.
   */
  readonly publicAddressesOnly: boolean;
  /**
   * `--allow-local-files`: read rows whose URL is a local path or a `file:` URL from disk
   * (local-file.ts); without it they fail `bad_url`, as a dataset from the internet must
   * not read this machine's files.
   */
  readonly allowLocalFiles: boolean;
}

/**
 * The tool and its version, nothing more: there is no project web page to point at. Polite
 * crawlers add a way to reach the operator, which only the user has: the README asks for
 * `--user-agent "photo-concept-pipeline/0.1.0 (+mailto:you@example.org)"`.
 */
export const DEFAULT_USER_AGENT = `photo-concept-pipeline/${VERSION}`;

/** Hosts `--cdn-resize` applies to: imgix-style CDNs that scale on request. */
export const IMGIX_STYLE_HOSTS: readonly string[] = ['images.pexels.com'];

const DAY_MS = 24 * 3600_000;

export function resolveFetchOptions(given: Partial<FetchOptions> = {}): FetchOptions {
  const value = { ...FETCH_DEFAULTS, ...defined(given) };
  return {
    concurrency: integer('--concurrency', value.concurrency, 1, 1024),
    perHostConcurrency: integer('--per-host-concurrency', value.perHostConcurrency, 1, 1024),
    ratePerSecond: atLeastZero('--rate', value.ratePerSecond),
    timeoutMs: integer('--timeout', value.timeoutMs, 1, DAY_MS),
    connectTimeoutMs: integer('--connect-timeout', value.connectTimeoutMs, 1, DAY_MS),
    headersTimeoutMs: integer('--headers-timeout', value.headersTimeoutMs, 1, DAY_MS),
    idleTimeoutMs: integer('--idle-timeout', value.idleTimeoutMs, 1, DAY_MS),
    maxBytes: integer('--max-bytes', value.maxBytes, 1, 2 ** 31 - 1),
    retries: integer('--retries', value.retries, 0, 100),
    patienceMs: integer('--patience', value.patienceMs, 0, 7 * DAY_MS),
    retryDelayMs: integer('--retry-delay', value.retryDelayMs, 0, 3600_000),
    userAgent: value.userAgent,
    respectRobotsTag: value.respectRobotsTag,
    disallowedRobotsTags: value.disallowedRobotsTags.map((tag) => tag.trim().toLowerCase()).filter(Boolean),
    cdnResizeHosts: value.cdnResizeHosts.map((host) => host.toLowerCase()),
    ...(value.proxy === undefined ? {} : { proxy: proxyUrl(value.proxy) }),
    insecure: value.insecure,
    http2: value.http2,
    publicAddressesOnly: value.publicAddressesOnly,
    allowLocalFiles: value.allowLocalFiles,
  };
}

export const FETCH_DEFAULTS: Readonly<Omit<FetchOptions, 'proxy'>> = Object.freeze({
  concurrency: 16,
  perHostConcurrency: 16,
  ratePerSecond: 0,
  timeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  maxBytes: 64 * 1024 * 1024,
  retries: 3,
  patienceMs: 600_000,
  retryDelayMs: 1000,
  userAgent: DEFAULT_USER_AGENT,
  respectRobotsTag: true,
  disallowedRobotsTags: DEFAULT_DISALLOWED_ROBOTS_TAGS,
  cdnResizeHosts: [],
  insecure: false,
  http2: false,
  publicAddressesOnly: false,
  allowLocalFiles: false,
});

function proxyUrl(value: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new UsageError(`--proxy must be an http:// or https:// URL, e.g. http://proxy.example:3128, got ${JSON.stringify(value)}`);
  }
  return value;
}
