/**
 * Resume: rows the state says need nothing more become `skipped` items before any
 * request is made. Saved samples are skipped when the sink still holds them (a recorded
 * sample whose file is gone is fetched again); permanent failures are skipped; transient
 * ones are tried again until they have failed `maxAttempts` runs. `retryFailed` retries
 * every failed sample once more.
 *
 * With `--dedupe url`, a row whose URL an earlier row saved under another id is skipped
 * as `duplicate_url`. A row whose URL another row of this run is fetching right now waits
 * here for that row's outcome (claims.ts), then is looked up again: so two rows with one
 * URL are never both fetched, however close together they come.
 */
import type { ResumeOptions } from '../state/options.js';
import type { Sink } from '../sinks/contract.js';
import type { ResumeState } from '../state/store.js';
import type { Item, SkipReason } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';
import type { InFlightClaims } from './claims.js';

/** Lookups are quick; a few at once hide the sink's `has` (a stat for the dir sink). */
const LOOKUPS_AT_ONCE = 16;
/**
 * With `--dedupe url`, a row waiting for another row with its URL keeps its slot
 * meanwhile: this many more slots let a burst of rows with one URL (a placeholder image)
 * wait while the rows after them are still read.
 */
const WAITING_ROOM = 48;

export function resumeStage(
  store: ResumeState,
  run: number,
  sink: Sink,
  options: Pick<ResumeOptions, 'maxAttempts' | 'retryFailed' | 'dedupe'>,
  claims: InFlightClaims,
): AsyncTransform<Item, Item> {
  const dedupeUrls = options.dedupe.includes('url');
  return mapConcurrent(async (item: Item, { signal }): Promise<Item> => {
    if (item.kind !== 'row') return item;
    const { row } = item;
    const skip = (reason: SkipReason): Item => ({ kind: 'skipped', row, reason });
    for (;;) {
      const state = await store.get(row.id);
      if (state?.lastRun === run) return skip('duplicate_id');
      if (state?.status === 'saved') {
        // A recorded sample whose files are gone is fetched again.
        if (!sink.has || (await sink.has(row.id))) return skip('already_saved');
      } else if (state && !options.retryFailed && !(state.transient && state.failedRuns < options.maxAttempts)) {
        return skip('failed_before');
      }
      if (!dedupeUrls) return item;
      // Held until this row's outcome is recorded, whatever it is (a skip too): a row with
      // the same URL then finds what the state says.
      const held = claims.claim(`url ${row.url}`, row, signal);
      if (held) {
        await held;
        continue; // the other row's outcome may have changed any answer above
      }
      const owner = await store.savedUnder(row.url);
      return owner !== undefined && owner !== row.id ? skip('duplicate_url') : item;
    }
  }, { concurrency: LOOKUPS_AT_ONCE + (dedupeUrls ? WAITING_ROOM : 0) });
}
