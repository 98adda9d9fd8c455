/**
 * Stage 2, fetch: `row` items in, `fetched` items (the whole body in one Buffer, since
 * sharp does not stream its input) or `failed` items out, `concurrency` requests in
 * flight. Bytes held here are bounded by concurrency x --max-bytes.
 */
import type { Fetcher } from '../fetch/fetcher.js';
import { failed, type Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

export function fetchStage(fetcher: Fetcher, concurrency: number): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'row') return item;
    const { row } = item;
    const result = await fetcher.fetch(row.url);
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${row.url}: ${result.detail}`, result);
    }
    return { kind: 'fetched', row, body: result.body, attempts: result.attempts, bytesFetched: result.bytesFetched };
  }, concurrency);
}
