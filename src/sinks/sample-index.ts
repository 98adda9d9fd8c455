/**
 * What a built-in sink has stored, kept beside the output in
 * `{output}/.pipeline/{sink}-index.sqlite`: one row per sample with the metadata the sink
 * writes out (filename, caption, sizes, hash, url) and the shard that holds it.
 *
 * It answers `has(id)` on resume and feeds `metadata.parquet`. Shard sinks add a sample
 * as pending when it goes into the open shard and commit the whole shard when its file is
 * complete; pending rows left by a killed run are dropped at the next open, so a sample in
 * a shard that never completed is fetched again, and none appears in two shards.
 */
import Database from 'better-sqlite3';
import type { Database as DatabaseHandle, Statement } from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface IndexedSample {
  id: string;
  filename: string;
  caption: string;
  width: number;
  height: number;
  original_width: number;
  original_height: number;
  sha256: string;
  url: string;
  shard: number | null;
}

export class SampleIndex {
  readonly #db: DatabaseHandle;
  readonly #put: Statement<[IndexedSample & { committed: number }]>;
  readonly #has: Statement<[string], { id: string }>;

  constructor(output: string, name: string) {
    mkdirSync(join(output, '.pipeline'), { recursive: true });
    this.#db = new Database(join(output, '.pipeline', `${name}-index.sqlite`));
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS samples (
      id TEXT PRIMARY KEY, filename TEXT NOT NULL, caption TEXT NOT NULL,
      width INTEGER NOT NULL, height INTEGER NOT NULL, original_width INTEGER NOT NULL, original_height INTEGER NOT NULL,
      sha256 TEXT NOT NULL, url TEXT NOT NULL, shard INTEGER, committed INTEGER NOT NULL
    ) WITHOUT ROWID`);
    this.#db.exec('DELETE FROM samples WHERE committed = 0');
    this.#put = this.#db.prepare(`INSERT OR REPLACE INTO samples VALUES
      (@id, @filename, @caption, @width, @height, @original_width, @original_height, @sha256, @url, @shard, @committed)`);
    this.#has = this.#db.prepare('SELECT id FROM samples WHERE id = ? AND committed = 1');
  }

  put(sample: IndexedSample, committed: boolean): void {
    this.#put.run({ ...sample, committed: committed ? 1 : 0 });
  }

  has(id: string): boolean {
    return this.#has.get(id) !== undefined;
  }

  commitShard(shard: number): void {
    this.#db.prepare('UPDATE samples SET committed = 1 WHERE shard = ?').run(shard);
  }

  /** The highest shard number committed so far, or -1. */
  lastShard(): number {
    const row = this.#db.prepare('SELECT max(shard) AS shard FROM samples WHERE committed = 1').get() as { shard: number | null };
    return row.shard ?? -1;
  }

  /** Every committed sample, in filename order, without holding them all in memory. */
  *committed(): IterableIterator<IndexedSample> {
    yield* this.#db
      .prepare('SELECT id, filename, caption, width, height, original_width, original_height, sha256, url, shard FROM samples WHERE committed = 1 ORDER BY filename')
      .iterate() as IterableIterator<IndexedSample>;
  }

  close(): void {
    this.#db.close();
  }
}
