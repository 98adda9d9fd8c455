/**
 * Stage 2, fetch: `row` items in, `fetched` items (the whole body in one Buffer, since
 * sharp does not stream its input) or `failed` items out, `concurrency` rows in flight.
 * Bytes held here are bounded by concurrency x --max-bytes.
 */
import type { RequestPlanner } from '../fetch/cdn-resize.js';
import type { Fetcher } from '../fetch/fetcher.js';
import { failed, type Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

/**
 * @param abandon aborted when the run gives up on rows in flight (after the grace period
 * of a stop): their requests and waits end at once, as `interrupted`. A fatal error
 * elsewhere in the pipeline ends them the same way.
 */
export function fetchStage(fetcher: Fetcher, planRequest: RequestPlanner, concurrency: number, abandon?: AbortSignal): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item, { signal }): Promise<Item> => {
    if (item.kind !== 'row') return item;
    const { row } = item;
    const { url, originalSize } = planRequest(row);
    const result = await fetcher.fetch(url, signal);
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${url}: ${result.detail}`, result);
    }
    // Hashed, and checked against --verify-hash-column, on an image thread (image/task.ts).
    return {
      kind: 'fetched',
      row,
      body: result.body,
      attempts: result.attempts,
      bytesFetched: result.bytesFetched,
      ...(originalSize ? { originalSize } : {}),
    };
  }, { concurrency, ...(abandon ? { signal: abandon } : {}) });
}
