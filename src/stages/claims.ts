/**
 * Rows in flight that another row must wait for (`--dedupe`). Two rows with one URL, or
 * with the same fetched bytes, must not both be stored; but the state knows a sample is
 * saved only once its outcome is recorded, at the end of the pipeline, and until then a
 * second row asking the state would be let through.
 *
 * So the first row to claim a key (`url ...`, `content ...`) holds it until its outcome
 * is recorded: the recorder calls `release` right after the state has it. A later row
 * with the same key waits for that, then asks the state again: saved under the first
 * row's id, it is a duplicate; the first row failed, and the later row claims the key
 * and goes on (the rows of one key are tried one after another, never two at once).
 *
 * Why waiting cannot deadlock: the holder claimed in the same stage before the waiting
 * row, and went on; nothing after that stage waits for it, so the holder reaches the
 * recorder whatever the waiting rows occupy. Memory stays bounded: only a row in flight
 * holds a key, and the stages' slots bound the rows in flight.
 */
import type { RowRef } from '../types.js';

interface Claim {
  readonly key: string;
  readonly released: Promise<void>;
  readonly release: () => void;
}

export class InFlightClaims {
  /** The claim on each key held now. */
  readonly #holders = new Map<string, Claim>();
  /** The claims each row holds, by `rowKey`. */
  readonly #byRow = new Map<string, Claim[]>();

  /**
   * Claims `key` for `row` and returns undefined; or, when another row holds it, returns
   * a promise that resolves once that row's outcome is recorded (the caller then looks
   * again), or rejects when `signal` aborts (the stage stopped early).
   */
  claim(key: string, row: RowRef, signal: AbortSignal): Promise<void> | undefined {
    const held = this.#holders.get(key);
    const mine = this.#byRow.get(rowKey(row));
    if (held && mine?.includes(held)) return undefined;
    if (held) return untilReleased(held.released, signal);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const claim: Claim = { key, released, release };
    this.#holders.set(key, claim);
    if (mine) mine.push(claim);
    else this.#byRow.set(rowKey(row), [claim]);
    return undefined;
  }

  /** Gives up every key `row` holds: its outcome is recorded. A row that holds none is a no-op. */
  release(row: RowRef): void {
    const key = rowKey(row);
    const claims = this.#byRow.get(key);
    if (!claims) return;
    this.#byRow.delete(key);
    for (const claim of claims) {
      this.#holders.delete(claim.key);
      claim.release();
    }
  }
}

/** A row within a run: its position, and its file when the run reads several. */
function rowKey(row: RowRef): string {
  return row.source === undefined ? String(row.index) : `${row.index}\u0000${row.source}`;
}

function untilReleased(released: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([released, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
