/**
 * Stage 3, decode and resize: `fetched` items in, `encoded` items or `failed` items out,
 * as many images at once as the machine has cores (each libvips pipeline runs on one
 * libuv worker thread). The fetched body's memory is freed as soon as the image is
 * encoded (see util/release-buffer.ts for why that matters).
 */
import { encodeImage } from '../image/encode.js';
import type { ImageOptions } from '../image/options.js';
import { failed, type Item } from '../types.js';
import { releaseBuffer } from '../util/release-buffer.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

export function imageStage(options: ImageOptions): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'fetched') return item;
    const { row, attempts, bytesFetched } = item;
    const result = await encodeImage(item.body, options, item.originalSize);
    const storedAsFetched = result.ok && result.image === item.body;
    // sharp is done with the body once its promise settles; an original kept byte for byte
    // goes on to the sink.
    if (!storedAsFetched) releaseBuffer(item.body);
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${row.url}: ${result.detail}`, { attempts, bytesFetched });
    }
    // The stored image is hashed by the sink stage, after this slot has gone to the next
    // decode: each of the few slots should wait on nothing but sharp.
    return { kind: 'encoded', row, attempts, bytesFetched, originalSha256: item.originalSha256, storedAsFetched, ...withoutOk(result) };
  }, { concurrency: options.concurrency });
}

function withoutOk<T extends { ok: true }>(result: T): Omit<T, 'ok'> {
  const { ok: _ok, ...rest } = result;
  return rest;
}
