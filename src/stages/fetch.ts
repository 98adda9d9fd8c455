/**
 * Stage 2, fetch: `row` items in, `fetched` items (the whole body in one Buffer, since
 * sharp does not stream its input) or `failed` items out, `concurrency` rows in flight.
 * Bytes held here are bounded by concurrency x --max-bytes.
 */
import type { RequestPlanner } from '../fetch/cdn-resize.js';
import type { Fetcher } from '../fetch/fetcher.js';
import { failed, type ExpectedHash, type HashAlgorithm, type Item } from '../types.js';
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
    const expected = row.expectedHash;
    const result = await fetcher.fetch(url, signal, expected?.algorithm);
    if (!result.ok) {
      return failed(row, result.reason, `row ${row.index} (id ${row.id}): ${url}: ${result.detail}`, result);
    }
    const originalSha256 = result.sha256;
    if (expected !== undefined && expected.hex !== result.digest) {
      const { algorithm, hex } = expected;
      return failed(row, 'hash_mismatch', `row ${row.index} (id ${row.id}): ${url}: the fetched bytes have ${algorithm} ${result.digest}, the input says ${hex}${otherAlgorithmHint(expected)}`, result);
    }
    return {
      kind: 'fetched',
      row,
      body: result.body,
      originalSha256,
      attempts: result.attempts,
      bytesFetched: result.bytesFetched,
      ...(originalSize ? { originalSize } : {}),
    };
  }, { concurrency, ...(abandon ? { signal: abandon } : {}) });
}

/** Hex digits of each digest. */
const HEX_LENGTH: Readonly<Record<HashAlgorithm, number>> = { md5: 32, sha256: 64, sha512: 128 };

/** When the input's value is the length of another algorithm's digest, the likely fix (`--hash`). */
function otherAlgorithmHint({ algorithm, hex }: ExpectedHash): string {
  if (hex.length === HEX_LENGTH[algorithm]) return '';
  const likely = (Object.keys(HEX_LENGTH) as HashAlgorithm[]).find((other) => HEX_LENGTH[other] === hex.length);
  return likely ? ` (${hex.length} hex digits, the length of ${likely}: --hash ${likely}?)` : '';
}
