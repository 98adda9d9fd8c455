/**
 * Stage 3, decode and resize: `fetched` items in, `encoded` items or `failed` items out,
 * `--image-concurrency` images at once. Each image is decoded, resized, encoded and hashed
 * on an image thread (image/pool.ts), its body moved there and handed back to be freed;
 * each libvips pipeline runs on a thread of libuv's pool.
 */
import type { ImagePool } from '../image/pool.js';
import { failed, type Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

export function imageStage(images: ImagePool, concurrency: number): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'fetched') return item;
    const { row, attempts, bytesFetched } = item;
    const result = await images.encode(item.body, { ...(item.originalSize ? { originalSize: item.originalSize } : {}), ...(row.expectedHash ? { expectedHash: row.expectedHash } : {}) });
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${row.url}: ${result.detail}`, { attempts, bytesFetched });
    }
    const { ok: _ok, image, ...encoded } = result;
    return { kind: 'encoded', row, attempts, bytesFetched, ...encoded, image: Buffer.from(image.buffer, image.byteOffset, image.byteLength) };
  }, { concurrency });
}
