/**
 * DNS once per host name per minute for the image fetcher, not once per connection.
 *
 * Opening a connection by name costs a getaddrinfo call, which runs on libuv's thread
 * pool: the same 4 threads sharp decodes and encodes on. A host that closes its
 * connections every few requests, or a run that opens hundreds of connections, then queues
 * lookups behind decodes and decodes behind lookups. undici's DNS interceptor keeps each
 * name's addresses and hands the pool an address to connect to; the request keeps the
 * name for everything else (TLS SNI and the certificate check, the Host header).
 *
 * - **Kept 60 s at most** (`DNS_MAX_TTL_MS`). getaddrinfo gives no TTL, so every answer is
 *   kept this long: a busy host costs one lookup a minute, and a host that moves (failover,
 *   a CDN steering traffic elsewhere) is followed within a minute, as in Chrome, whose
 *   cache of the system resolver's answers keeps them a minute too. Much longer would keep
 *   connecting to an address a host has left.
 * - **One lookup in flight per name.** A run that starts 16 requests to a new host makes
 *   one lookup, not 16 (the interceptor alone would make one per request until the first
 *   answer is in).
 * - **Bounded memory.** Only names looked up in the last minute are kept, so a run over
 *   millions of hosts holds a minute's worth. The cache never reports itself full: undici
 *   would then connect by name, past the address guard.
 * - **Deadline.** A lookup with no answer within `--connect-timeout` fails as
 *   `timeout_connect`, as it did when the lookup was part of opening the connection.
 * - **IPv4 first**, IPv6 when a host has no IPv4 address, or when a connection to the one
 *   picked is refused or times out (undici tries the other family once). The interceptor's
 *   default alternates families request by request, which fails every other request on
 *   the many machines whose IPv6 has no route out. The lookup asks as net.connect does
 *   (ADDRCONFIG: no IPv6 answers on a machine without an IPv6 address).
 * - **The address guard filters every answer** before it is kept (address-guard.ts), so a
 *   forbidden address is never picked.
 *
 * Pools are then per address, not per name: hosts that share an address (a CDN's) share
 * connections over plain HTTP, and over HTTPS a connection is reopened when the next
 * request on it is for another name (undici checks the servername), as docs/network.md says.
 */
import { ADDRCONFIG } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { errors, interceptors, type Dispatcher } from 'undici';
import { allowedAddresses, type AddressGuard } from './address-guard.js';

/** The longest an answer is used; see above. */
export const DNS_MAX_TTL_MS = 60_000;

type Records = interceptors.DNSInterceptorOriginRecords;
type Address = interceptors.DNSInterceptorRecord;

export interface DnsCacheOptions {
  readonly guard: AddressGuard;
  /** How long a lookup may take (`--connect-timeout`). */
  readonly timeoutMs: number;
}

export function dnsCache(options: DnsCacheOptions): Dispatcher.DispatcherComposeInterceptor {
  const resolve = onePerName((name) => withDeadline(resolveAllowed(name, options.guard), options.timeoutMs, name));
  return interceptors.dns({
    maxTTL: DNS_MAX_TTL_MS,
    dualStack: true,
    affinity: 4,
    storage: recentNames(DNS_MAX_TTL_MS),
    lookup(origin, _options, callback) {
      resolve(bareHostname(origin)).then(
        // Copies: the interceptor stamps each record it stores, and waiters share an answer.
        (addresses) => callback(null, addresses.map((each) => ({ ...each }))),
        (error: NodeJS.ErrnoException) => callback(error, []),
      );
    },
  });
}

/** A name's addresses as net.connect would ask for them, less those the guard refuses. */
async function resolveAllowed(name: string, guard: AddressGuard): Promise<Address[]> {
  const found = await lookup(name, { all: true, hints: process.platform === 'win32' ? 0 : ADDRCONFIG });
  return allowedAddresses(guard, name, found).map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4, ttl: DNS_MAX_TTL_MS }));
}

/** Callers asking for a name while a lookup of it is under way share that lookup. */
function onePerName<T>(resolve: (name: string) => Promise<T>): (name: string) => Promise<T> {
  const pending = new Map<string, Promise<T>>();
  return (name) => {
    let answer = pending.get(name);
    if (answer === undefined) {
      answer = resolve(name).finally(() => pending.delete(name));
      pending.set(name, answer);
    }
    return answer;
  };
}

/** The lookup, or undici's connect-timeout error once `ms` have passed (the lookup itself cannot be cancelled). */
function withDeadline<T>(answer: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new errors.ConnectTimeoutError(`no DNS answer for ${name} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([answer, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The interceptor's storage: names looked up in the last `ttlMs`, oldest first, so each
 * store drops the expired ones from the front (a Map keeps insertion order).
 */
function recentNames(ttlMs: number): interceptors.DNSStorage {
  const entries = new Map<string, { readonly records: Records; readonly storedAt: number }>();
  return {
    get size() {
      return entries.size;
    },
    get(name) {
      const entry = entries.get(name);
      if (entry === undefined) return null;
      if (Date.now() - entry.storedAt <= ttlMs) return entry.records;
      entries.delete(name);
      return null;
    },
    set(name, records) {
      const now = Date.now();
      entries.delete(name);
      if (records !== null) entries.set(name, { records, storedAt: now });
      for (const [oldest, entry] of entries) {
        if (now - entry.storedAt <= ttlMs) break;
        entries.delete(oldest);
      }
    },
    delete(name) {
      entries.delete(name);
    },
    full: () => false,
  };
}

/** undici hands IPv6 literals over in brackets (`[::1]`), which getaddrinfo does not take. */
function bareHostname(origin: URL): string {
  return origin.hostname.replace(/^\[(.*)\]$/, '$1');
}
