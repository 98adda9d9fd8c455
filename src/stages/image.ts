/**
 * Stage 3, decode and resize: `fetched` items in, `encoded` items or `failed` items out,
 * as many images at once as the machine has cores (each libvips pipeline runs on one
 * libuv worker thread). The fetched body's memory is freed as soon as the image is
 * encoded (see util/release-buffer.ts for why that matters).
 */
import { encodeImage } from '../image/encode.js';
import type { ImageOptions } from '../options.js';
import { failed, type Item } from '../types.js';
import { releaseBuffer } from '../util/release-buffer.js';
import { sha256Hex } from '../util/sha256.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

export function imageStage(options: ImageOptions): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'fetched') return item;
    const { row, attempts, bytesFetched } = item;
    const result = await encodeImage(item.body, options, item.originalSize);
    // sharp is done with the body once its promise settles; an original kept byte for byte
    // goes on to the sink.
    if (!(result.ok && result.image === item.body)) releaseBuffer(item.body);
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${row.url}: ${result.detail}`, { attempts, bytesFetched });
    }
    // Hashed once, for the sink's metadata and for --results; an original kept byte for
    // byte was hashed as it arrived.
    const sha256 = result.image === item.body ? item.originalSha256 : sha256Hex(result.image);
    return { kind: 'encoded', row, attempts, bytesFetched, sha256, originalSha256: item.originalSha256, ...withoutOk(result) };
  }, { concurrency: options.concurrency });
}

function withoutOk<T extends { ok: true }>(result: T): Omit<T, 'ok'> {
  const { ok: _ok, ...rest } = result;
  return rest;
}
