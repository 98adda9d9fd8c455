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
 */
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';

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

export function createDispatcher(options: ConnectionOptions, keepAlive?: { timeoutMs: number; maxTimeoutMs: number }): Dispatcher {
  const tls = options.insecure ? { rejectUnauthorized: false } : {};
  const common = {
    ...(keepAlive ? { keepAliveTimeout: keepAlive.timeoutMs, keepAliveMaxTimeout: keepAlive.maxTimeoutMs } : {}),
    connect: { timeout: options.connectTimeoutMs, ...tls },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    ...(options.http2 ? { allowH2: true } : {}),
  };
  if (proxyInUse(options) === undefined) return new Agent(common);
  return new EnvHttpProxyAgent({
    ...common,
    ...(options.proxy === undefined ? {} : { httpProxy: options.proxy, httpsProxy: options.proxy }),
    // The connection to the image host, inside the tunnel.
    requestTls: { timeout: options.connectTimeoutMs, ...tls },
  });
}

/** What a run says at its start about how it connects (a proxy, and loudly: --insecure). */
export function connectionNotes(options: Pick<ConnectionOptions, 'proxy' | 'insecure'>): string[] {
  const notes: string[] = [];
  const proxy = proxyInUse(options);
  if (proxy !== undefined) notes.push(`fetching through proxy ${proxy}${options.proxy === undefined ? ' (from the environment; NO_PROXY applies)' : ''}`);
  if (options.insecure) notes.push('WARNING: --insecure: TLS certificates are not checked; anyone between this machine and the hosts could change the images');
  return notes;
}
