/**
 * Stage 2, fetch: `row` items in, `fetched` items (the whole body in one Buffer, since
 * sharp does not stream its input) or `failed` items out, `concurrency` rows in flight.
 * Bytes held here are bounded by concurrency x --max-bytes.
 */
import type { RequestPlanner } from '../fetch/cdn-resize.js';
import type { Fetcher } from '../fetch/fetcher.js';
import { failed, type Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

export function fetchStage(fetcher: Fetcher, planRequest: RequestPlanner, concurrency: number): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'row') return item;
    const { row } = item;
    const { url, originalSize } = planRequest(row);
    const result = await fetcher.fetch(url);
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${url}: ${result.detail}`, result);
    }
    return {
      kind: 'fetched',
      row,
      body: result.body,
      attempts: result.attempts,
      bytesFetched: result.bytesFetched,
      ...(originalSize ? { originalSize } : {}),
    };
  }, concurrency);
}
