/**
 * `--cdn-resize`: ask an imgix-style CDN (such as images.pexels.com) for an image already
 * scaled near the target, instead of the 12-24 megapixel original. A bandwidth saver:
 * the pixels then come from the CDN's resampler, not from ours.
 *
 * The request size comes from the row's width and height: both sides at least the target
 * size, so the local resize only ever scales down, and the local target is computed from
 * the row's original size (passed on as `originalSize`), so it lands on exactly the size
 * the full original would have given.
 */
import type { Size } from '../image/size-rule.js';
import { shortestSideSize } from '../image/size-rule.js';
import type { Row } from '../types.js';

/** Query parameters of the original URL worth keeping: colour space and format. */
const KEPT_PARAMETERS = ['cs', 'fm'];

export interface PlannedRequest {
  readonly url: string;
  /** Set when the CDN was asked to scale: the size the original has. */
  readonly originalSize?: Size;
}

export type RequestPlanner = (row: Row) => PlannedRequest;

export function createRequestPlanner(hosts: readonly string[], resolution: number, round: number): RequestPlanner {
  if (hosts.length === 0) return (row) => ({ url: row.url });
  const hostSet = new Set(hosts);
  return (row) => {
    // A local file (--allow-local-files) has no CDN to ask.
    if (!row.width || !row.height || !/^https?:/i.test(row.url)) return { url: row.url };
    const url = new URL(row.url);
    if (!hostSet.has(url.hostname.toLowerCase())) return { url: row.url };
    const original = { width: row.width, height: row.height };
    const target = shortestSideSize(original, resolution, round);
    const scale = Math.max(target.width / original.width, target.height / original.height);
    if (scale >= 1) return { url: row.url }; // never ask a CDN to upscale
    const kept = KEPT_PARAMETERS.flatMap((name) => url.searchParams.getAll(name).map((value) => [name, value] as const));
    url.search = '';
    for (const [name, value] of kept) url.searchParams.append(name, value);
    url.searchParams.set('w', String(Math.ceil(original.width * scale)));
    url.searchParams.set('h', String(Math.ceil(original.height * scale)));
    url.searchParams.set('q', '95');
    return { url: url.href, originalSize: original };
  };
}
