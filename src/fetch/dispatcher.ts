/**
 * The HTTP connection pool for a run (images) or for reading input over HTTP: one undici
 * dispatcher with the run's deadlines.
 *
 * - **Proxies.** `--proxy URL`, or else the usual `HTTPS_PROXY`, `HTTP_PROXY` and
 *   `NO_PROXY` variables (either case), as curl and pip honour them: cluster and
 *   university machines often reach the internet only through one. undici's
 *   EnvHttpProxyAgent reads them and tunnels each connection with CONNECT.
 * - **`--http2`** offers HTTP/2 to HTTPS hosts (ALPN); off by default: HTTP/1.1 keep-alive
 *   was faster in the measurement docs/reference.md gives.
 * - **`--insecure`** skips certificate checks (for hosts whose chain is broken); it is off
 *   by default and the run says so loudly when it is on.
 * - **The image fetcher's dispatcher is guarded** (`guard`): its connections resolve names
 *   through a DNS cache kept a minute (dns-cache.ts) whose answers the address guard has
 *   filtered (address-guard.ts), and an interceptor refuses forbidden addresses written in
 *   URLs. The cache is the connections' `lookup`, not an interceptor that hands undici an
 *   address, so undici keeps its pools per host name: two HTTPS names on one address took
 *   about 200 TLS handshakes for 400 requests pooled per address, and 32 pooled per name
 *   (docs/network.md). Through a proxy the proxy resolves the names, so only addresses
 *   written in URLs are checked there, and the names of NO_PROXY hosts, which this machine
 *   connects to itself (through the same lookup). The input reader's dispatcher has no
 *   guard: its URL is the user's own choice.
 */
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { guardedResolve, refuseForbiddenAddresses, type AddressGuard } from './address-guard.js';
import { cachedLookup, systemResolve } from './dns-cache.js';

export interface ConnectionOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** `--proxy`: every request goes through it (NO_PROXY still applies). */
  readonly proxy?: string;
  /** Accept any certificate. */
  readonly insecure: boolean;
  /** Offer HTTP/2 in the TLS handshake (`--http2`); HTTP/1.1 keep-alive otherwise. */
  readonly http2?: boolean;
}

const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'];

/** The proxy in use, if any (for the run's log; credentials left out). */
export function proxyInUse(options: Pick<ConnectionOptions, 'proxy'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const proxy = options.proxy ?? PROXY_VARIABLES.map((name) => env[name]).find((value) => value !== undefined && value !== '');
  if (proxy === undefined) return undefined;
  try {
    const url = new URL(proxy);
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return proxy;
  }
}

export interface DispatcherExtras {
  /** Keep idle connections open this long (the server's keep-alive hint, capped). */
  readonly keepAlive?: { readonly timeoutMs: number; readonly maxTimeoutMs: number };
  /** Refuse these addresses, and cache DNS answers a minute (the image fetcher). */
  readonly guard?: AddressGuard;
}

export function createDispatcher(options: ConnectionOptions, { keepAlive, guard }: DispatcherExtras = {}): Dispatcher {
  const tls = options.insecure ? { rejectUnauthorized: false } : {};
  const lookup = guard ? cachedLookup({ resolve: guardedResolve(guard, systemResolve), timeoutMs: options.connectTimeoutMs }) : undefined;
  const common = {
    ...(keepAlive ? { keepAliveTimeout: keepAlive.timeoutMs, keepAliveMaxTimeout: keepAlive.maxTimeoutMs } : {}),
    // undici passes `connect` on to net.connect / tls.connect, lookup included.
    connect: { timeout: options.connectTimeoutMs, ...tls, ...(lookup ? { lookup } : {}) },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    ...(options.http2 ? { allowH2: true } : {}),
  };
  const dispatcher =
    proxyInUse(options) === undefined
      ? new Agent(common)
      : new EnvHttpProxyAgent({
          // `connect` is used only for NO_PROXY hosts: the proxy agents open their own connections.
          ...common,
          ...(options.proxy === undefined ? {} : { httpProxy: options.proxy, httpsProxy: options.proxy }),
          // The connection to the image host, inside the tunnel.
          requestTls: { timeout: options.connectTimeoutMs, ...tls },
        });
  return guard ? dispatcher.compose(refuseForbiddenAddresses(guard)) : dispatcher;
}

/**
 * What a run says at its start about how it connects (a proxy, and loudly: --insecure);
 * with --public-addresses-only and a proxy, what the guard cannot see.
 */
export function connectionNotes(options: Pick<ConnectionOptions, 'proxy' | 'insecure'> & { readonly publicAddressesOnly?: boolean }): string[] {
  const notes: string[] = [];
  const proxy = proxyInUse(options);
  if (proxy !== undefined) notes.push(`fetching through proxy ${proxy}${options.proxy === undefined ? ' (from the environment; NO_PROXY applies)' : ''}`);
  if (proxy !== undefined && options.publicAddressesOnly) {
    notes.push('--public-addresses-only: the proxy resolves the host names, so only addresses written in URLs (and NO_PROXY hosts) are checked');
  }
  if (options.insecure) notes.push('WARNING: --insecure: TLS certificates are not checked; anyone between this machine and the hosts could change the images');
  return notes;
}
