/**
 * Opens the SQLite databases this tool keeps beside an output (the resume state, a sink's
 * index) with the settings they all need.
 *
 * - WAL with synchronous=NORMAL: a killed process loses no committed transaction, and a
 *   commit costs no fsync (only a power cut could lose the last few, which costs a refetch).
 * - A 2 MiB page cache per database. better-sqlite3 builds SQLite with 16 MiB
 *   (SQLITE_DEFAULT_CACHE_SIZE=-16000), and a database fills it once it is larger: the
 *   state as the run goes on, the index at the first metadata.parquet refresh, which
 *   reads every row (reading a 567k-row index grew the process by 14 MiB with 16 MiB and
 *   by nothing with 2). The lookups and appends of a run touch a B-tree's interior pages
 *   and a leaf, and the leaves come from the operating system's file cache anyway: the
 *   dataset run was no slower with 2 MiB.
 */
import Database from 'better-sqlite3';
import type { Database as DatabaseHandle } from 'better-sqlite3';

const PAGE_CACHE_KIB = 2048;

export function openDatabase(path: string, options: { readonly?: boolean } = {}): DatabaseHandle {
  const readonly = options.readonly ?? false;
  const db = new Database(path, { readonly, fileMustExist: readonly });
  // Negative: a size in KiB rather than a number of pages.
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  if (!readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }
  return db;
}
