/**
 * Resume: rows the state says need nothing more become `skipped` items before any
 * request is made. Saved samples are skipped when the sink still holds them (a recorded
 * sample whose file is gone is fetched again); permanent failures are skipped; transient
 * ones are tried again until they have failed `maxAttempts` runs. `retryFailed` retries
 * every failed sample once more. With `dedupeUrls`, a row whose URL an earlier row saved
 * under another id is skipped as `duplicate_url`.
 */
import type { ResumeOptions } from '../state/options.js';
import type { Sink } from '../sinks/contract.js';
import type { ResumeState } from '../state/store.js';
import type { Item, SkipReason } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

/** Lookups are quick; a few at once hide the sink's `has` (a stat for the dir sink). */
const LOOKUPS_AT_ONCE = 16;

export function resumeStage(store: ResumeState, run: number, sink: Sink, options: Pick<ResumeOptions, 'maxAttempts' | 'retryFailed' | 'dedupeUrls'>): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'row') return item;
    const { row } = item;
    const skip = (reason: SkipReason): Item => ({ kind: 'skipped', row, reason });
    const state = await store.get(row.id);
    if (state?.lastRun === run) return skip('duplicate_id');
    if (state?.status === 'saved') {
      // A recorded sample whose files are gone is fetched again.
      if (!sink.has || (await sink.has(row.id))) return skip('already_saved');
    } else if (state && !options.retryFailed && !(state.transient && state.failedRuns < options.maxAttempts)) {
      return skip('failed_before');
    }
    if (options.dedupeUrls) {
      const owner = await store.savedUnder(row.url);
      if (owner !== undefined && owner !== row.id) return skip('duplicate_url');
    }
    return item;
  }, { concurrency: LOOKUPS_AT_ONCE });
}
