// Counts this process's getaddrinfo calls, whoever makes them: each is a GETADDRINFOREQWRAP
// request handed to libuv's thread pool. Load it first (`node --import`) so no lookup is
// missed, and import `lookups` from the same URL to read the count.
import { createHook } from 'node:async_hooks';

let count = 0;
createHook({
  init(_id, type) {
    if (type === 'GETADDRINFOREQWRAP') count++;
  },
}).enable();

/** getaddrinfo calls so far. */
export function lookups() {
  return count;
}
