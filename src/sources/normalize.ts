/**
 * Turns one raw record (from any input format) into a `Row`, or a `failed` item that
 * names the row and says what is wrong with it. The same rules hold for NDJSON, CSV
 * and Parquet, so the three formats give identical rows.
 */
import type { ColumnNames, MissingCaptions } from './options.js';
import { failed, type CaptionSource, type Failed, type Row, type RowRef } from '../types.js';
import { unsafeIdReason } from '../util/safe-id.js';
import { isLocalPath } from '../fetch/local-file.js';

export type RawRecord = Record<string, unknown>;

/** How records become rows: the columns to read, and what a row without a caption becomes. */
export interface RowRules {
  readonly columns: ColumnNames;
  readonly missingCaptions: MissingCaptions;
}

/**
 * @param positionalId the row's id when the input has no id column (its position)
 * @param source the input file, when a run reads several
 */
export function normalizeRecord(record: RawRecord, index: number, { columns, missingCaptions }: RowRules, positionalId?: string, source?: string): Row | Failed {
  const id = positionalId ?? scalarText(record[columns.id]);
  const rawUrl = record[columns.url];
  const url = typeof rawUrl === 'string' ? rawUrl.trim() : undefined;

  if (id === undefined) return failed(refOf(index, id, url, source), 'bad_row', `row ${index}: no id in column "${columns.id}"`);
  if (!url) return failed(refOf(index, id, url, source), 'bad_row', `row ${index} (id ${id}): no url in column "${columns.url}"`);
  const unsafe = unsafeIdReason(id);
  if (unsafe) return failed(refOf(index, id, url, source), 'unsafe_id', `row ${index}: id ${JSON.stringify(id)} cannot be a file name: ${unsafe}`);
  const urlProblem = checkUrl(url);
  if (urlProblem) return failed(refOf(index, id, url, source), 'bad_url', `row ${index} (id ${id}): ${urlProblem}`);

  // A sample without a caption trains nothing, and SimpleTuner refuses a whole dataset
  // whose metadata holds one empty caption: refuse the row before any request, unless
  // the run stores such images to caption them later (`--missing-captions keep`).
  const own = foldNewlines(captionText(record[columns.caption]));
  const fallback = own ? '' : foldNewlines(captionText(record[columns.fallbackCaption]));
  const captionSource: CaptionSource = own ? 'caption' : fallback ? 'fallback' : 'none';
  if (captionSource === 'none' && missingCaptions === 'fail') {
    return failed(refOf(index, id, url, source), 'no_caption', `row ${index} (id ${id}): no caption in column "${columns.caption}" nor in "${columns.fallbackCaption}"`);
  }

  // Built by assignment rather than with conditional spreads: this runs once per row.
  const row: { -readonly [K in keyof Row]: Row[K] } = {
    index,
    id,
    url,
    caption: own || fallback || null,
    captionSource,
    columns: plainColumns(record),
  };
  if (source !== undefined) row.source = source;
  if (columns.hash !== undefined) {
    const expected = scalarText(record[columns.hash]);
    // An empty cell asks for nothing; an "md5:" / "sha256:" prefix naming the algorithm
    // (as some manifests write) is dropped. Another prefix stays, and will not match.
    if (expected) {
      const algorithm = columns.hashAlgorithm;
      const hex = expected.toLowerCase();
      row.expectedHash = { algorithm, hex: hex.startsWith(`${algorithm}:`) ? hex.slice(algorithm.length + 1) : hex };
    }
  }
  const width = positiveNumber(record[columns.width]);
  const height = positiveNumber(record[columns.height]);
  if (width !== undefined) row.width = width;
  if (height !== undefined) row.height = height;
  return row;
}

/** What a broken row is known by: its position (and file), and its id and url when it has them. */
function refOf(index: number, id: string | undefined, url: string | undefined, source: string | undefined): RowRef {
  return { index, ...(id === undefined ? {} : { id }), ...(url ? { url } : {}), ...(source === undefined ? {} : { source }) };
}

const PLAIN_HTTP_URL = /^https?:\/\/(?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*(?::[0-9]{1,4})?(?:[/?#][\x21-\x7e]*)?$/i;

/**
 * Only http and https are fetched, and local paths and `file:` URLs read, which the
 * fetcher does only with --allow-local-files (fetch/local-file.ts); anything else is
 * refused per row.
 */
export function checkUrl(url: string): string | undefined {
  // The common case, decided without the URL parser (567k calls add up): a host name
  // whose last label starts with a letter (so never a malformed IPv4 address), a port
  // below 10000, then printable ASCII. Every URL this matches is one the parser accepts.
  if (PLAIN_HTTP_URL.test(url)) return undefined;
  if (isLocalPath(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `url ${JSON.stringify(truncate(url))} is not a valid URL`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `url ${JSON.stringify(truncate(url))} is not http or https`;
  }
  return undefined;
}

/** SimpleTuner reads one caption per line, so a caption file must be one line. */
export function foldNewlines(text: string): string {
  if (!text.includes('\n') && !text.includes('\r')) return text; // most captions: no regex needed
  return text.replace(/[ \t]*[\r\n]+\s*/g, ' ').trim();
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Captions are text; tags may be a list (Parquet list column, JSON array). */
function captionText(value: unknown): string {
  if (typeof value === 'string') return value.trim();
  if (Array.isArray(value)) return value.map(captionText).filter(Boolean).join(', ');
  if (value !== null && typeof value === 'object' && typeof (value as { toArray?: unknown }).toArray === 'function') {
    return captionText(Array.from((value as { toArray(): ArrayLike<unknown> }).toArray()));
  }
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return '';
}

function positiveNumber(value: unknown): number | undefined {
  const number = typeof value === 'bigint' ? Number(value) : typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) && number > 0 ? number : undefined;
}

/** Source columns as JSON-safe values, for sinks and `--results`. */
function plainColumns(record: RawRecord): RawRecord {
  let copy: RawRecord | undefined;
  for (const key in record) {
    const value = record[key];
    if (typeof value === 'bigint' || (value !== null && typeof value === 'object' && !Array.isArray(value))) {
      copy ??= { ...record };
      copy[key] = typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()) : jsonSafe(value);
    }
  }
  return copy ?? record;
}

function jsonSafe(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && typeof (value as { toArray?: unknown }).toArray === 'function') {
    return Array.from((value as { toArray(): ArrayLike<unknown> }).toArray(), jsonSafe);
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function truncate(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
