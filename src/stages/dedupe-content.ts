/**
 * `--dedupe content`, after the image stage: a row whose fetched bytes (their sha256) an
 * earlier row saved under another id is skipped as `duplicate_content`, before it is
 * stored. The bytes are hashed on the image thread, with the decode (image/task.ts), so a
 * duplicate is still fetched and decoded (rare in a real dataset: the main thread's time
 * per image matters more than a decode now and then); it spares the write and the record.
 *
 * Two rows with the same bytes in flight at once: the later one waits here for the first
 * one's outcome (claims.ts), as rows with one URL wait in the resume stage, then asks the
 * state again. A waiting row holds its encoded image; one slot per decode slot bounds
 * them.
 */
import type { ResumeState } from '../state/store.js';
import type { Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';
import { releaseBuffer } from '../util/release-buffer.js';
import type { InFlightClaims } from './claims.js';

export function contentDedupeStage(store: ResumeState, claims: InFlightClaims, concurrency: number): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item, { signal }): Promise<Item> => {
    if (item.kind !== 'encoded') return item;
    const { row, originalSha256 } = item;
    // Held until this row's outcome is recorded; a row with the same bytes then finds it in the state.
    for (let held = claims.claim(`content ${originalSha256}`, row, signal); held; held = claims.claim(`content ${originalSha256}`, row, signal)) {
      await held;
    }
    const owner = await store.savedWithContent(originalSha256);
    if (owner === undefined || owner === row.id) return item;
    releaseBuffer(item.image); // nothing else holds it: the sink never sees this row
    return { kind: 'skipped', row, reason: 'duplicate_content', attempts: item.attempts, bytesFetched: item.bytesFetched, originalSha256 };
  }, { concurrency });
}
