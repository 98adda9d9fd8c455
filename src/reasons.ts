/**
 * Every way a row can fail, in one table: its stable code (in `--results`, the summary,
 * the resume state and the metrics), whether another attempt could succeed, and what it
 * means. The fetch stage's retries and the resume state's reruns both ask `isTransient`,
 * and the table of reasons in docs/reference.md is checked against this one by the tests.
 * The ways a row is skipped (nothing to do, not a failure) have a table of their own.
 */
interface ReasonInfo {
  /** The network, the server or the output went wrong, not the sample: worth trying again. */
  readonly transient: boolean;
  readonly meaning: string;
}

export const FAILURE_REASONS = {
  bad_row: { transient: false, meaning: 'no id or no url, invalid JSON, unparseable CSV record' },
  bad_url: { transient: false, meaning: 'not http or https, or a redirect to one; a local path or file: URL without --allow-local-files' },
  unsafe_id: { transient: false, meaning: 'the id cannot be a file name' },
  no_caption: { transient: false, meaning: 'neither the caption nor the fallback caption has any text' },
  timeout_connect: { transient: true, meaning: 'the connection was not open in time' },
  timeout_headers: { transient: true, meaning: 'the response headers did not arrive in time' },
  timeout_body: { transient: true, meaning: 'the body paused longer than --idle-timeout' },
  timeout_total: { transient: true, meaning: 'the attempt took longer than --timeout' },
  too_large: { transient: false, meaning: 'the body is over --max-bytes' },
  file_unreadable: { transient: false, meaning: 'a local file (--allow-local-files) that cannot be read: missing, a folder, no permission' },
  truncated: { transient: true, meaning: 'the body ended before its Content-Length' },
  connection_error: { transient: true, meaning: 'refused, reset, DNS' },
  blocked_address: { transient: false, meaning: 'the URL or a redirect leads to an address the run refuses (link-local and cloud metadata, unspecified, multicast; loopback and private ones with --public-addresses-only); no connection made' },
  redirect_loop: { transient: false, meaning: 'a redirect back to a URL already visited, or too many' },
  hash_mismatch: { transient: false, meaning: 'the fetched bytes do not have the hash the input gives (--verify-hash-column, in the --hash algorithm)' },
  robots_denied: { transient: false, meaning: 'X-Robots-Tag opts the image out (noai, noimageai, noindex or noimageindex by default; --disallowed-robots-tags)' },
  not_image: { transient: false, meaning: 'the bytes are not an image' },
  decode_error: { transient: false, meaning: 'a corrupt or truncated image' },
  too_many_pixels: { transient: false, meaning: 'the header declares more than --max-pixels' },
  filtered_metadata: { transient: false, meaning: 'the declared size fails a size filter; no request made' },
  filtered_size: { transient: false, meaning: 'the real size fails a size filter' },
  sink_error: { transient: true, meaning: 'the sink failed to store the sample' },
  sink_refused: { transient: false, meaning: 'the sink refused the sample for good (an error with transient: false)' },
  limits_error: { transient: true, meaning: "the per-host limits could not be taken (a queue worker's Redis failed); not the sample's fault" },
  interrupted: { transient: true, meaning: 'abandoned at shutdown after the grace period; not held against the sample' },
} as const satisfies Record<string, ReasonInfo>;

/** Stable failure codes: a named reason, or the server's HTTP status. */
export type FailureReason = keyof typeof FAILURE_REASONS | `http_${number}`;

/** HTTP answers that may change: request timeout, too many requests, server errors. */
function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

export function isTransient(reason: FailureReason): boolean {
  if (reason.startsWith('http_')) return isTransientStatus(Number(reason.slice(5)));
  return FAILURE_REASONS[reason as keyof typeof FAILURE_REASONS]?.transient ?? false;
}

/** Every way a row is skipped: the state says there is nothing to do for it. Checked against docs/reference.md like the failures. */
export const SKIP_REASONS = {
  already_saved: 'an earlier run saved it, and the sink still holds it',
  failed_before: 'an earlier run failed it for good, or it failed transiently in --max-attempts runs',
  duplicate_id: 'an earlier row of this run had the same id',
  duplicate_url: 'with --dedupe url: its URL was saved under another id; no request is made',
  duplicate_content: 'with --dedupe content: the bytes fetched for it were saved under another id; not decoded or stored',
} as const satisfies Record<string, string>;

export type SkipReason = keyof typeof SKIP_REASONS;
