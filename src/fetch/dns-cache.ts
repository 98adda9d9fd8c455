/**
 * DNS once per host name per minute for the image fetcher, not once per connection: a
 * `lookup` that undici's Agent hands to `net.connect` / `tls.connect` (`connect.lookup`).
 *
 * Opening a connection by name costs a getaddrinfo call, which runs on libuv's thread
 * pool: the threads sharp decodes and encodes on. A host that closes its connections every
 * few requests, or a run that opens hundreds of connections, then queues lookups behind
 * decodes and decodes behind lookups. The cache sits in the connection's own lookup, so
 * undici still sees only the name: its pools stay one per host name (keep-alive per name
 * over HTTPS, where a connection belongs to one servername), and TLS SNI, the certificate
 * check and the Host header are the name's, as without a cache.
 *
 * - **The system's answer** (`dns.lookup`, getaddrinfo), asked as net.connect asks
 *   (ADDRCONFIG: no IPv6 answers on a machine without an IPv6 address): /etc/hosts,
 *   search domains and every other NSS source count, as for any other program. A resolver
 *   that asks DNS servers itself (c-ares, as cacheable-lookup does) answers from DNS
 *   before /etc/hosts, fails where no DNS server answers, and, in cacheable-lookup,
 *   keeps no answer that came from /etc/hosts (docs/network.md has the measurement).
 * - **Kept 60 s at most** (`DNS_MAX_TTL_MS`). getaddrinfo gives no TTL, so every answer is
 *   kept this long: a busy host costs one lookup a minute, and a host that moves (failover,
 *   a CDN steering traffic elsewhere) is followed within a minute, as in Chrome, whose
 *   cache of the system resolver's answers keeps them a minute too. Much longer would keep
 *   connecting to an address a host has left. Failures are not kept.
 * - **One lookup in flight per name.** A run that starts 16 requests to a new host makes
 *   one lookup, not 16.
 * - **Bounded memory.** Only names looked up in the last minute are kept, and at most
 *   `DNS_MAX_NAMES` of them (the oldest go first): a name dropped early costs one lookup more.
 * - **Deadline.** A lookup with no answer within `--connect-timeout` fails as
 *   `timeout_connect`, and the next connection asks again. undici's connect timeout covers
 *   the lookup too; this one also frees the name for the next asker.
 * - **Happy Eyeballs kept.** With `autoSelectFamily` (Node's default) net.connect asks
 *   for every address and races the families; it gets them in the system's order. Without
 *   it, one address is tried: an IPv4 one while the host has any, since IPv6 fails on the
 *   many machines whose IPv6 has no route out.
 * - **`resolve` is the caller's**, so the address guard filters each answer before it is
 *   kept (dispatcher.ts, address-guard.ts): a forbidden address is never handed to connect.
 */
import { ADDRCONFIG, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { errors } from 'undici';

/** The longest an answer is used; see above. */
export const DNS_MAX_TTL_MS = 60_000;

/** The most names kept at once: far more than a run's connections reach in a minute. */
export const DNS_MAX_NAMES = 10_000;

/** All of a name's addresses, or an error (the guard's, or the resolver's). */
export type Resolve = (name: string) => Promise<readonly LookupAddress[]>;

export interface DnsCacheOptions {
  /** How long a lookup may take (`--connect-timeout`). */
  readonly timeoutMs: number;
  /** Defaults to `systemResolve`; the dispatcher passes it through the address guard. */
  readonly resolve?: Resolve;
  /** For tests; defaults to Date.now. */
  readonly now?: () => number;
}

/** A name's addresses as net.connect would ask for them. */
export const systemResolve: Resolve = (name) => dnsLookup(name, { all: true, hints: process.platform === 'win32' ? 0 : ADDRCONFIG });

/** A `lookup` for net.connect / tls.connect that answers each name from a minute's cache. */
export function cachedLookup({ timeoutMs, resolve = systemResolve, now = Date.now }: DnsCacheOptions): LookupFunction {
  const answers = recentAnswers(DNS_MAX_TTL_MS, DNS_MAX_NAMES, now);
  const resolveAndKeep = onePerName(async (name) => {
    const found = await withDeadline(resolve(name), timeoutMs, name);
    answers.set(name, found);
    return found;
  });
  const addressesOf = (name: string): Promise<readonly LookupAddress[]> => {
    const kept = answers.get(name);
    return kept === undefined ? resolveAndKeep(name) : Promise.resolve(kept);
  };
  return (hostname: string, options: LookupOptions, callback) => {
    addressesOf(hostname).then(
      (found) => {
        const wanted = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const usable = wanted === 4 || wanted === 6 ? found.filter(({ family }) => family === wanted) : found;
        const [first] = usable;
        // Copies: net.connect may keep what it is given, and every caller shares an answer.
        if (first === undefined) callback(notFound(hostname), '');
        else if (options.all) callback(null, usable.map(({ address, family }) => ({ address, family })));
        else {
          const picked = usable.find(({ family }) => family === 4) ?? first;
          callback(null, picked.address, picked.family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
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
 * Answers from the last `ttlMs`, at most `maxNames` of them, oldest first, so each store
 * drops the expired ones (and, when full, the oldest) from the front: a Map keeps
 * insertion order.
 */
function recentAnswers(ttlMs: number, maxNames: number, now: () => number) {
  const entries = new Map<string, { readonly addresses: readonly LookupAddress[]; readonly storedAt: number }>();
  return {
    get(name: string): readonly LookupAddress[] | undefined {
      const entry = entries.get(name);
      if (entry === undefined) return undefined;
      if (now() - entry.storedAt <= ttlMs) return entry.addresses;
      entries.delete(name);
      return undefined;
    },
    set(name: string, addresses: readonly LookupAddress[]): void {
      const storedAt = now();
      entries.delete(name);
      entries.set(name, { addresses, storedAt });
      for (const [oldest, entry] of entries) {
        if (storedAt - entry.storedAt <= ttlMs && entries.size <= maxNames) break;
        entries.delete(oldest);
      }
    },
  };
}

/** What getaddrinfo says for a name with no address of the family asked for. */
function notFound(hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
}
