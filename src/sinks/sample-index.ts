/**
 * What a built-in sink has stored, kept beside the output in
 * `{output}/.pipeline/{sink}-index.sqlite`: one row per sample with the metadata the sink
 * writes out (filename, caption, sizes, hash, url), the shard that holds it and its key
 * there (with `--layout img2dataset` a shard and position, not the id: the index is where
 * one is found from the other).
 *
 * It answers `has(id)` on resume and feeds `metadata.parquet`. Shard sinks add a sample
 * as pending when it goes into the open shard and commit the whole shard when its file is
 * complete; at the next open, pending rows of a shard that never completed are dropped,
 * so its samples are fetched again, and none appears in two shards.
 *
 * It also remembers whether the dataset-wide files written from it (metadata.parquet)
 * still cover every stored sample: a flag cleared by the first store after they were
 * written, so a run killed since then is known to have left them behind.
 */
import { openDatabase } from '../util/sqlite.js';
import type { Database as DatabaseHandle, Statement } from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { join } from 'node:path';
import { writeError } from '../errors.js';

export interface IndexedSample {
  id: string;
  /**
   * The name the shard sinks store the sample under, before the extension: the id, or
   * with `--layout img2dataset` the shard and position (`000030042`); null in the dir sink.
   */
  key: string | null;
  filename: string;
  /** Null for a sample stored without a caption (`--missing-captions keep`). */
  caption: string | null;
  width: number;
  height: number;
  original_width: number;
  original_height: number;
  sha256: string;
  /** sha256 of the fetched bytes; null for samples stored before it was recorded. */
  original_sha256: string | null;
  url: string;
  /** Where the caption came from (`caption`, `fallback`, `none`); null for samples stored before it was recorded. */
  caption_source: string | null;
  shard: number | null;
  /** Kept input columns (`--keep-columns`), by name; null when none were kept. */
  extra: Record<string, unknown> | null;
}

/** How far the dataset-wide metadata file covers what is stored (for `status`). */
export interface MetadataCoverage {
  /** Samples stored (committed). */
  readonly stored: number;
  /** Rows the metadata file had when it was last written, and when that was; absent if never. */
  readonly metadataRows?: number;
  readonly refreshedAt?: string;
  /** Nothing was stored since the metadata file was written. */
  readonly current: boolean;
}

/** A samples row as `COLUMNS` lists them. */
type RawSample = [string, string | null, string, string, number, number, number, number, string, string | null, string, number | null, string | null, string | null];

const META_TABLE = 'CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID';
const COLUMNS = 'id, key, filename, caption, width, height, original_width, original_height, sha256, original_sha256, url, shard, extra, caption_source';

/**
 * The `caption` column is NOT NULL (it was created so before samples could lack one), and
 * SQLite cannot drop that from a column: a sample without a caption is stored as '', which
 * no caption can be (rows' captions are never empty, see sources/normalize.ts).
 */
const NO_CAPTION = '';

export class SampleIndex {
  readonly #db: DatabaseHandle;
  readonly #path: string;
  readonly #put: Statement<[Omit<IndexedSample, 'extra' | 'caption'> & { caption: string; extra: string | null; committed: number }]>;
  readonly #has: Statement<[string], { caption: string }>;
  readonly #page: Statement<[string, number], unknown[]>;
  readonly #setMeta: Statement<[string, string]>;
  /** Mirrors the stored `metadata_current` flag, so that stores write it only once. */
  #metadataCurrent: boolean;

  constructor(output: string, name: string) {
    mkdirSync(join(output, '.pipeline'), { recursive: true });
    this.#path = indexPath(output, name);
    this.#db = openDatabase(this.#path);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS samples (
      id TEXT PRIMARY KEY, filename TEXT NOT NULL, caption TEXT NOT NULL,
      width INTEGER NOT NULL, height INTEGER NOT NULL, original_width INTEGER NOT NULL, original_height INTEGER NOT NULL,
      sha256 TEXT NOT NULL, url TEXT NOT NULL, shard INTEGER, committed INTEGER NOT NULL
    ) WITHOUT ROWID`);
    // Added after the first release: an older index gains the column (null for its samples).
    const known = (this.#db.prepare('SELECT name FROM pragma_table_info(?)').all('samples') as Array<{ name: string }>).map(({ name }) => name);
    if (!known.includes('original_sha256')) this.#db.exec('ALTER TABLE samples ADD COLUMN original_sha256 TEXT');
    if (!known.includes('extra')) this.#db.exec('ALTER TABLE samples ADD COLUMN extra TEXT');
    if (!known.includes('key')) this.#db.exec('ALTER TABLE samples ADD COLUMN key TEXT');
    if (!known.includes('caption_source')) this.#db.exec('ALTER TABLE samples ADD COLUMN caption_source TEXT');
    this.#db.exec(META_TABLE);
    this.#put = this.#db.prepare(`INSERT OR REPLACE INTO samples (${COLUMNS}, committed) VALUES
      (@id, @key, @filename, @caption, @width, @height, @original_width, @original_height, @sha256, @original_sha256, @url, @shard, @extra, @caption_source, @committed)`);
    this.#has = this.#db.prepare('SELECT caption FROM samples WHERE id = ? AND committed = 1');
    // Rows as arrays: a refresh reads every sample, and arrays are lighter than objects.
    this.#page = this.#db.prepare(`SELECT ${COLUMNS} FROM samples WHERE committed = 1 AND id > ? ORDER BY id LIMIT ?`).raw(true) as Statement<[string, number], unknown[]>;
    this.#setMeta = this.#db.prepare('INSERT OR REPLACE INTO meta VALUES (?, ?)');
    // An index from before the flag existed is current only if it holds nothing.
    this.#metadataCurrent = readCoverage(this.#db).current;
  }

  put(sample: IndexedSample, committed: boolean): void {
    this.#write(() => {
      // A metadata part written before keys or caption sources were recorded (finalize) has none.
      this.#put.run({ ...sample, key: sample.key ?? null, caption: sample.caption ?? NO_CAPTION, caption_source: sample.caption_source ?? null, extra: sample.extra ? JSON.stringify(sample.extra) : null, committed: committed ? 1 : 0 });
      if (this.#metadataCurrent) {
        this.#setMeta.run('metadata_current', '0');
        this.#metadataCurrent = false;
      }
    });
  }

  /** Whether something was stored that the metadata file, as last written, lacks. */
  get metadataStale(): boolean {
    return !this.#metadataCurrent;
  }

  /**
   * Writes the metadata file with `write`, which is given every committed sample, and
   * records how many it covered. If nothing was stored meanwhile, the file is current.
   */
  async refreshMetadata(write: (samples: AsyncIterable<IndexedSample>) => Promise<number>): Promise<number> {
    // Stores during the walk clear this again (see put), so the flag is only kept when
    // the walk saw everything.
    this.#metadataCurrent = true;
    const rows = await write(this.#committedPages());
    this.#write(this.#db.transaction(() => {
      this.#setMeta.run('metadata_rows', String(rows));
      this.#setMeta.run('metadata_refreshed_at', new Date().toISOString().replace('T', ' ').slice(0, 19));
      if (this.#metadataCurrent) this.#setMeta.run('metadata_current', '1');
    }));
    return rows;
  }

  /** A setting the sink recorded about this output (e.g. `subfolders`), or undefined. */
  setting(key: string): string | undefined {
    return (this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(`setting:${key}`) as { value: string } | undefined)?.value;
  }

  recordSetting(key: string, value: string): void {
    this.#write(() => this.#setMeta.run(`setting:${key}`, value));
  }

  /** Whether any sample is stored. */
  holdsSamples(): boolean {
    return this.#db.prepare('SELECT 1 FROM samples WHERE committed = 1 LIMIT 1').get() !== undefined;
  }

  /** How many stored images have a shorter side under `side` or an area under `area` (pixels). */
  countSmallerThan(side: number, area: number): number {
    const row = this.#db
      .prepare('SELECT count(*) AS count FROM samples WHERE committed = 1 AND (min(width, height) < ? OR width * height < ?)')
      .get(side, area) as { count: number };
    return row.count;
  }

  has(id: string): boolean {
    return this.#has.get(id) !== undefined;
  }

  /** Whether the stored sample has a caption; undefined when no sample with this id is stored. */
  captioned(id: string): boolean | undefined {
    const stored = this.#has.get(id);
    return stored && stored.caption !== NO_CAPTION;
  }

  /** Stored samples without a caption (`--missing-captions keep`). */
  uncaptioned(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM samples WHERE committed = 1 AND caption = ?').get(NO_CAPTION) as { n: number }).n;
  }

  /** Shards with samples added but not committed (the open shard, or one a killed run left). */
  pendingShards(): number[] {
    return (this.#db.prepare('SELECT DISTINCT shard FROM samples WHERE committed = 0 AND shard IS NOT NULL').all() as Array<{ shard: number }>).map(({ shard }) => shard);
  }

  /** Forgets every sample not committed: its shard will never be complete. */
  dropPending(): void {
    this.#write(() => this.#db.exec('DELETE FROM samples WHERE committed = 0'));
  }

  commitShard(shard: number): void {
    this.#write(() => this.#db.prepare('UPDATE samples SET committed = 1 WHERE shard = ?').run(shard));
  }

  /** A write that fails (a full disk) says which database it was. */
  #write(write: () => unknown): void {
    try {
      write();
    } catch (error) {
      throw writeError(this.#path, error);
    }
  }

  /** The highest shard number committed so far, or -1. */
  lastShard(): number {
    const row = this.#db.prepare('SELECT max(shard) AS shard FROM samples WHERE committed = 1').get() as { shard: number | null };
    return row.shard ?? -1;
  }

  /**
   * Every committed sample in id order, a page at a time. Each page is read whole, so no
   * statement stays open across the awaits of the consumer while stores go on.
   */
  async *#committedPages(pageSize = 2_000): AsyncGenerator<IndexedSample> {
    let after = '';
    for (;;) {
      const page = this.#page.all(after, pageSize) as RawSample[];
      for (const [id, key, filename, caption, width, height, original_width, original_height, sha256, original_sha256, url, shard, extra, caption_source] of page) {
        yield {
          id,
          key,
          filename,
          caption: caption === NO_CAPTION ? null : caption,
          width,
          height,
          original_width,
          original_height,
          sha256,
          original_sha256,
          url,
          caption_source,
          shard,
          extra: extra === null ? null : (JSON.parse(extra) as Record<string, unknown>),
        };
      }
      if (page.length < pageSize) return;
      after = page[page.length - 1]![0];
      // Let the run's sockets and timers in between pages: a whole dataset is seconds of work.
      await setImmediate();
    }
  }

  close(): void {
    this.#db.close();
  }

  /** What `status` shows of an output's index, read without changing it; undefined when there is none. */
  static coverage(output: string, name: string): MetadataCoverage | undefined {
    const path = indexPath(output, name);
    if (!existsSync(path)) return undefined;
    const db = openDatabase(path, { readonly: true });
    try {
      return readCoverage(db);
    } finally {
      db.close();
    }
  }
}

function indexPath(output: string, name: string): string {
  return join(output, '.pipeline', `${name}-index.sqlite`);
}

function readCoverage(db: DatabaseHandle): MetadataCoverage {
  const stored = (db.prepare('SELECT count(*) AS n FROM samples WHERE committed = 1').get() as { n: number }).n;
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  const meta = new Map(hasMeta ? (db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map(({ key, value }) => [key, value]) : []);
  const rows = meta.get('metadata_rows');
  const refreshedAt = meta.get('metadata_refreshed_at');
  const flag = meta.get('metadata_current');
  return {
    stored,
    ...(rows === undefined ? {} : { metadataRows: Number(rows) }),
    ...(refreshedAt === undefined ? {} : { refreshedAt }),
    current: flag === undefined ? stored === 0 : flag === '1',
  };
}
