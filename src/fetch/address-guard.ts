/**
 * Which addresses an image may be fetched from, checked when a connection is opened.
 *
 * A row's URL is data from the internet, and so is every redirect an image host sends:
 * either can point at `http://169.254.169.254/`, where every cloud's metadata service
 * hands out the machine's credentials, or at services on this machine and its private
 * network. So the check is made on the address actually connected to, after DNS:
 *
 * - a name's addresses are filtered as they are looked up (`guardedResolve`, which the
 *   connections' cached lookup resolves with, dns-cache.ts), so a name that resolves to a
 *   forbidden address is caught, a forbidden one among several is never picked, and no
 *   answer can change between the check and the connection (DNS rebinding): the address
 *   connected to is one the filter let through;
 * - an address written in the URL has no lookup (net.connect takes it as it is):
 *   `refuseForbiddenAddresses` checks the origin of every request the dispatcher is asked
 *   for, each redirect hop included.
 *
 * The ranges are one table. Node's BlockList matches subnets, and an IPv4 rule also
 * matches the IPv4-mapped IPv6 form of its addresses (`::ffff:169.254.169.254`, which a
 * dual-stack socket would reach), so each range is written once.
 */
import { BlockList, isIP } from 'node:net';
import type { LookupAddress } from 'node:dns';
import type { Dispatcher } from 'undici';

interface AddressRange {
  readonly network: string;
  readonly prefix: number;
  /** What an address in the range is, for the row's failure detail. */
  readonly kind: string;
  /** Refused in every run (true), or only with `--public-addresses-only`. */
  readonly always: boolean;
}

/** First match names the rule, so a specific address comes before the range around it. */
const RANGES: readonly AddressRange[] = [
  // 169.254.169.254 is the metadata service of AWS, GCP, Azure, Oracle, DigitalOcean and
  // OpenStack; nothing else on a link-local address is an image host either.
  { network: '169.254.0.0', prefix: 16, kind: 'link-local (cloud metadata services)', always: true },
  // IPv6 link-local: only this machine's own link.
  { network: 'fe80::', prefix: 10, kind: 'link-local', always: true },
  // AWS's metadata service over IPv6 (Nitro instances); unique-local, so listed on its own.
  { network: 'fd00:ec2::254', prefix: 128, kind: "AWS's metadata service", always: true },
  // Alibaba Cloud's metadata service; in the CGNAT range, so listed on its own.
  { network: '100.100.100.200', prefix: 32, kind: "Alibaba Cloud's metadata service", always: true },
  // "This network": Linux takes a connection to 0.0.0.0 to this machine itself.
  { network: '0.0.0.0', prefix: 8, kind: 'unspecified', always: true },
  // Likewise: a connection to :: reaches this machine.
  { network: '::', prefix: 128, kind: 'unspecified', always: true },
  // Multicast: a group of receivers, never a web server.
  { network: '224.0.0.0', prefix: 4, kind: 'multicast', always: true },
  { network: 'ff00::', prefix: 8, kind: 'multicast', always: true },
  // --public-addresses-only: this machine and the networks around it, which a dataset from
  // the internet has no business reaching from a cloud machine (databases, admin panels).
  { network: '127.0.0.0', prefix: 8, kind: 'loopback', always: false },
  { network: '::1', prefix: 128, kind: 'loopback', always: false },
  // Private networks (RFC 1918).
  { network: '10.0.0.0', prefix: 8, kind: 'private', always: false },
  { network: '172.16.0.0', prefix: 12, kind: 'private', always: false },
  { network: '192.168.0.0', prefix: 16, kind: 'private', always: false },
  // Shared address space (RFC 6598): carrier-grade NAT, and the addresses of VPN meshes.
  { network: '100.64.0.0', prefix: 10, kind: 'shared address space (CGNAT)', always: false },
  // IPv6's private networks (RFC 4193).
  { network: 'fc00::', prefix: 7, kind: 'unique-local', always: false },
];

export interface AddressGuardOptions {
  /** Also refuse loopback, private, CGNAT and unique-local addresses (`--public-addresses-only`). */
  readonly publicAddressesOnly: boolean;
}

/** Why an address may not be connected to. */
export interface Refusal {
  readonly address: string;
  readonly kind: string;
  /** `always refused`, or the flag that refuses it. */
  readonly rule: string;
}

export interface AddressGuard {
  /** Why `address` (an IP address, IPv6 without brackets) is refused, or undefined. */
  refusal(address: string): Refusal | undefined;
}

/** A connection the guard refused; its message names the host, the address and the rule. */
export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
  readonly code = 'ERR_BLOCKED_ADDRESS';
}

export function createAddressGuard(options: AddressGuardOptions): AddressGuard {
  const rules = RANGES.filter((range) => range.always || options.publicAddressesOnly).map((range) => {
    const list = new BlockList();
    list.addSubnet(range.network, range.prefix, isIP(range.network) === 6 ? 'ipv6' : 'ipv4');
    return { list, kind: range.kind, rule: range.always ? 'always refused' : 'refused by --public-addresses-only' };
  });
  return {
    refusal(address) {
      const family = isIP(address);
      if (family === 0) return undefined;
      const type = family === 6 ? 'ipv6' : 'ipv4';
      const rule = rules.find(({ list }) => list.check(address, type));
      return rule && { address, kind: rule.kind, rule: rule.rule };
    },
  };
}

/**
 * The addresses `host` resolved to that the guard allows, in their order; if none is
 * left, a BlockedAddressError naming every refused one.
 */
export function allowedAddresses<T extends LookupAddress>(guard: AddressGuard, host: string, addresses: readonly T[]): T[] {
  const refusals: Refusal[] = [];
  const allowed = addresses.filter((each) => {
    const refusal = guard.refusal(each.address);
    if (refusal) refusals.push(refusal);
    return refusal === undefined;
  });
  if (allowed.length === 0 && refusals.length > 0) throw new BlockedAddressError(describeRefusals(host, refusals));
  return allowed;
}

/** `169.254.169.254 is link-local ...`, or `meta.example resolves to ...` for a name. */
export function describeRefusals(host: string, refusals: readonly Refusal[]): string {
  const [only] = refusals;
  if (refusals.length === 1 && only !== undefined) {
    const what = `${only.kind}, ${only.rule}`;
    return only.address === host ? `${host} is ${what}` : `${host} resolves to ${only.address}, which is ${what}`;
  }
  return `${host} resolves only to refused addresses: ${refusals.map((each) => `${each.address} (${each.kind}, ${each.rule})`).join(', ')}`;
}

/**
 * Refuses a request whose origin is a forbidden address written in its URL (which is never
 * looked up), before it reaches the pool or, through a proxy, the proxy.
 */
export function refuseForbiddenAddresses(guard: AddressGuard): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const address = literalAddress(options.origin);
    const refusal = address === undefined ? undefined : guard.refusal(address);
    if (refusal === undefined) return dispatch(options, handler);
    // undici's own interceptors fail a request that has no controller yet the same way.
    handler.onResponseError?.(null as unknown as Dispatcher.DispatchController, new BlockedAddressError(describeRefusals(refusal.address, [refusal])));
    return true;
  };
}

/**
 * A name's addresses, less those the guard refuses: what the image fetcher's DNS cache
 * resolves with (dns-cache.ts), so a refused address is dropped before it is kept, and
 * never reaches a connect.
 */
export function guardedResolve(guard: AddressGuard, resolve: (name: string) => Promise<readonly LookupAddress[]>): (name: string) => Promise<LookupAddress[]> {
  return async (name) => allowedAddresses(guard, name, await resolve(name));
}

/** The IP address a request's origin names, if it names one (IPv6 without its brackets). */
export function literalAddress(origin: string | URL | undefined): string | undefined {
  if (origin === undefined) return undefined;
  const hostname = (typeof origin === 'string' ? new URL(origin) : origin).hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(hostname) === 0 ? undefined : hostname;
}
