// Counts this process's DNS lookups, whoever makes them and however: each getaddrinfo call
// is a GETADDRINFOREQWRAP request handed to libuv's thread pool (dns.lookup, net.connect's
// default), and each query through c-ares (dns.resolve*, a Resolver) is a QUERYWRAP. Load
// it first (`node --import`) so no lookup is missed, and import `lookups` from the same URL
// to read the count.
import { createHook } from 'node:async_hooks';

const LOOKUP_TYPES = new Set(['GETADDRINFOREQWRAP', 'QUERYWRAP']);
let count = 0;
createHook({
  init(_id, type) {
    if (LOOKUP_TYPES.has(type)) count++;
  },
}).enable();

/** getaddrinfo calls and c-ares queries so far. */
export function lookups() {
  return count;
}
