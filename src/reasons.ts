/**
 * Which failures are worth trying again: the network or the server went wrong, not the
 * sample. One list for the fetch stage's retries and the resume state's reruns.
 */
const TRANSIENT: ReadonlySet<string> = new Set([
  'timeout_connect',
  'timeout_headers',
  'timeout_body',
  'timeout_total',
  'truncated',
  'connection_error',
  'sink_error',
  'http_408',
  'http_429',
]);

export function isTransient(reason: string): boolean {
  return TRANSIENT.has(reason) || /^http_5\d\d$/.test(reason);
}
