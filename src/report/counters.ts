import type { HostStatus } from '../fetch/host-gate.js';

/** The run's running totals: what the progress bar, log lines, metrics and summary show. */
export interface Counters {
  /** Rows read from the input so far. */
  read: number;
  /** Rows with an outcome (saved, failed or skipped). */
  rows: number;
  saved: number;
  failed: number;
  skipped: number;
  failures: Record<string, number>;
  skips: Record<string, number>;
  bytesFetched: number;
  bytesWritten: number;
}

export function emptyCounters(): Counters {
  return { read: 0, rows: 0, saved: 0, failed: 0, skipped: 0, failures: {}, skips: {}, bytesFetched: 0, bytesWritten: 0 };
}

/** A moment of the run, for reporters. */
export interface Snapshot extends Readonly<Counters> {
  readonly seconds: number;
  /** Rows in the input, when known up front (Parquet). */
  readonly total: number | undefined;
  /** The hosts asked so far, busiest first; a function, so it is only worked out when shown. */
  readonly hosts: () => readonly HostStatus[];
}
