/**
 * The resume state: one SQLite database in `{output}/.pipeline/state.sqlite` that says,
 * per sample id, whether it was saved or how it failed, and what each run did.
 *
 * A sample is recorded as saved only after its sink said it was written, so a crash can
 * leave a file that is not recorded (it is fetched and rewritten next time, atomically)
 * but never a record without its file. WAL mode with synchronous=NORMAL survives a killed
 * process (committed transactions are in the log); only a power cut could lose the last
 * few, which again costs a refetch, never a corrupt file.
 */
import { openDatabase } from '../util/sqlite.js';
import type { Database as DatabaseHandle, Statement } from 'better-sqlite3';
import { join } from 'node:path';
import { isTransient, type FailureReason } from '../reasons.js';
import type { CaptionSource } from '../types.js';
import { SinkError, errorMessage } from '../errors.js';

export const STATE_DIR = '.pipeline';

export interface SampleState {
  readonly status: 'saved' | 'failed';
  readonly reason: string | null;
  readonly transient: boolean;
  /** Runs that ended this sample with a failure. */
  readonly failedRuns: number;
  /** The run that last wrote this record. */
  readonly lastRun: number;
}

/** What is recorded of a saved sample: for resume, and for the report of the dataset. */
export interface SavedRecord {
  readonly url: string;
  /** The stored image's size. */
  readonly width: number;
  readonly height: number;
  /** Bytes the sink wrote, and bytes fetched for it (retries included). */
  readonly bytes: number;
  readonly bytesFetched: number;
  /** sha256 of the fetched bytes (`--dedupe content` finds earlier samples by it). */
  readonly originalSha256: string;
  /** The fetched image's size, after EXIF orientation. */
  readonly originalWidth: number;
  readonly originalHeight: number;
  /** Which column the caption came from, if any (`--missing-captions keep`). */
  readonly captionSource: CaptionSource;
  readonly captionWords: number;
}

/** What is recorded of a failed sample. */
export interface FailedRecord {
  readonly reason: FailureReason;
  readonly url?: string;
  /** The one-line explanation (`--results`' detail). */
  readonly detail: string;
  readonly bytesFetched: number;
}

/** A row skipped for a reason its id's own record would not show (a duplicate of another id). */
export interface SkippedRecord {
  readonly reason: string;
  readonly url: string;
}

/** A run's counts so far: rows, outcomes, and failures and skips by reason. */
export interface RunCounts {
  readonly rows: number;
  readonly saved: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failures?: Readonly<Record<string, number>>;
  readonly skips?: Readonly<Record<string, number>>;
}

export interface RunRecord {
  readonly run: number;
  readonly pid: number;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly exit: string | null;
  readonly rows: number;
  readonly saved: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failures: Record<string, number>;
  readonly skips: Record<string, number>;
  /** What the run was asked to write (sink, format, size rule), when it recorded it. */
  readonly settings: Record<string, unknown> | null;
}

export interface StateSummary {
  readonly saved: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
  /** Failed samples a later run will try again (transient, under --max-attempts). */
  readonly pendingRetries: number;
  readonly lastRun: RunRecord | undefined;
}

/**
 * What the pipeline asks of the resume state. The SQLite store (one machine) answers at
 * once; the Redis store that workers share (see queue/redis-state.ts) answers later.
 */
export interface ResumeState {
  get(id: string): SampleState | undefined | Promise<SampleState | undefined>;
  recordSaved(id: string, run: number, saved: SavedRecord): void | Promise<void>;
  /** A failure never overwrites a saved sample. */
  recordFailed(id: string, run: number, failure: FailedRecord): void | Promise<void>;
  /** A row skipped as a duplicate of another id (`--dedupe`): its id has no record of its own. */
  recordSkipped(id: string, run: number, skip: SkippedRecord): void | Promise<void>;
  /** The run's counts so far, kept as it goes (one machine's state does; a queue's counts its own way). */
  updateRun?(run: number, counts: RunCounts): void | Promise<void>;
  /** Adds to each host's count of "slow down" answers (429, 503). */
  addSlowDowns(counts: ReadonlyMap<string, number>): void | Promise<void>;
  /** The id a sample from this URL was saved under, if any (`--dedupe url`). */
  savedUnder(url: string): string | undefined | Promise<string | undefined>;
  /** The id a sample whose fetched bytes had this sha256 was saved under, if any (`--dedupe content`). */
  savedWithContent(sha256: string): string | undefined | Promise<string | undefined>;
}

/** Columns added after the first release, and their types: an older state gains them (null for its samples). */
const ADDED_COLUMNS: ReadonlyArray<readonly [table: string, column: string, type: string]> = [
  ['samples', 'url', 'TEXT'],
  ['samples', 'detail', 'TEXT'],
  ['samples', 'bytes_fetched', 'INTEGER'],
  ['samples', 'original_width', 'INTEGER'],
  ['samples', 'original_height', 'INTEGER'],
  ['samples', 'caption_source', 'TEXT'],
  ['samples', 'caption_words', 'INTEGER'],
  ['runs', 'failures', 'TEXT'],
  ['runs', 'skips', 'TEXT'],
  ['runs', 'settings', 'TEXT'],
];

export class StateStore implements ResumeState {
  readonly #db: DatabaseHandle;
  readonly #get: Statement<[string], RawSample>;
  readonly #urlOwner: Statement<[string], { id: string }>;
  /** The writing statements, prepared at the first write: a state opened read-only (`status`, `report`) may predate their columns. */
  #writes: ReturnType<typeof prepareWrites> | undefined;

  private constructor(db: DatabaseHandle) {
    this.#db = db;
    this.#get = db.prepare('SELECT status, reason, transient, failed_runs, last_run FROM samples WHERE id = ?');
    this.#urlOwner = db.prepare('SELECT id FROM urls WHERE url = ?');
  }

  get #statements(): ReturnType<typeof prepareWrites> {
    return (this.#writes ??= prepareWrites(this.#db));
  }

  /** Opens (creating if needed) the state of an output folder. */
  static open(output: string, options: { readonly?: boolean } = {}): StateStore {
    const db = openDatabase(join(output, STATE_DIR, 'state.sqlite'), options);
    if (!options.readonly) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS samples (
          id TEXT PRIMARY KEY,
          status TEXT NOT NULL CHECK (status IN ('saved', 'failed')),
          reason TEXT,
          transient INTEGER NOT NULL DEFAULT 0,
          failed_runs INTEGER NOT NULL DEFAULT 0,
          last_run INTEGER NOT NULL,
          width INTEGER, height INTEGER, bytes INTEGER,
          updated_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS urls (url TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS skips (id TEXT PRIMARY KEY, reason TEXT NOT NULL, url TEXT, run INTEGER NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS hosts (host TEXT PRIMARY KEY, slow_downs INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS contents (sha256 TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS runs (
          run INTEGER PRIMARY KEY AUTOINCREMENT,
          pid INTEGER NOT NULL,
          started_at TEXT NOT NULL,
          ended_at TEXT,
          exit TEXT,
          rows INTEGER NOT NULL DEFAULT 0, saved INTEGER NOT NULL DEFAULT 0,
          failed INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0
        );`);
      for (const [table, column, type] of ADDED_COLUMNS) {
        const known = (db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: string }>).some(({ name }) => name === column);
        if (!known) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
      }
    }
    return new StateStore(db);
  }

  /** A new run, and what it was asked to write (for the report: how its images were sized). */
  startRun(settings?: Record<string, unknown>): number {
    const result = this.#write(() =>
      this.#db.prepare("INSERT INTO runs (pid, started_at, settings) VALUES (?, datetime('now'), ?)").run(process.pid, settings ? JSON.stringify(settings) : null),
    );
    return Number(result.lastInsertRowid);
  }

  /** The run's counts so far (a run killed later still shows what it did). */
  updateRun(run: number, counts: RunCounts): void {
    this.#write(() =>
      this.#db
        .prepare('UPDATE runs SET rows = ?, saved = ?, failed = ?, skipped = ?, failures = ?, skips = ? WHERE run = ?')
        .run(counts.rows, counts.saved, counts.failed, counts.skipped, JSON.stringify(counts.failures ?? {}), JSON.stringify(counts.skips ?? {}), run),
    );
  }

  endRun(run: number, exit: string, counts: RunCounts): void {
    this.updateRun(run, counts);
    this.#write(() => this.#db.prepare("UPDATE runs SET ended_at = datetime('now'), exit = ? WHERE run = ?").run(exit, run));
  }

  get(id: string): SampleState | undefined {
    const raw = this.#get.get(id);
    if (!raw) return undefined;
    return {
      status: raw.status,
      reason: raw.reason,
      transient: raw.transient === 1,
      failedRuns: raw.failed_runs,
      lastRun: raw.last_run,
    };
  }

  /**
   * The sample, its URL and its content's hash in one transaction: the first id saved
   * from a URL, or with some bytes, keeps it. Kept whether or not this run dedupes, so a
   * later `--dedupe` run knows what earlier runs saved.
   */
  recordSaved(id: string, run: number, saved: SavedRecord): void {
    this.#write(() => this.#statements.recordSaved(id, run, saved));
  }

  savedUnder(url: string): string | undefined {
    return this.#urlOwner.get(url)?.id;
  }

  savedWithContent(sha256: string): string | undefined {
    return this.#statements.contentOwner.get(sha256)?.id;
  }

  /** A failure never overwrites a saved sample (a duplicate row failing later, say). */
  recordFailed(id: string, run: number, failure: FailedRecord): void {
    const { reason, url, detail, bytesFetched } = failure;
    this.#write(() => this.#statements.failed.run({ id, reason, transient: isTransient(reason) ? 1 : 0, run, url: url ?? null, detail, bytesFetched }));
  }

  recordSkipped(id: string, run: number, skip: SkippedRecord): void {
    this.#write(() => this.#statements.skipped.run({ id, run, reason: skip.reason, url: skip.url }));
  }

  addSlowDowns(counts: ReadonlyMap<string, number>): void {
    if (counts.size === 0) return;
    this.#write(this.#db.transaction(() => {
      for (const [host, count] of counts) this.#statements.slowDowns.run(host, count);
    }));
  }

  /** A state that cannot be written (disk full) stops the run: progress would be lost. */
  #write<T>(write: () => T): T {
    try {
      return write();
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new SinkError(`cannot write the resume state ${this.#db.name}: ${errorMessage(error)}${code ? ` (${code})` : ''}`);
    }
  }

  summary(maxAttempts: number): StateSummary {
    const count = (sql: string, ...params: unknown[]) => (this.#db.prepare(sql).get(...params) as { n: number }).n;
    const failures: Record<string, number> = {};
    for (const { reason, n } of this.#db
      .prepare("SELECT reason, count(*) AS n FROM samples WHERE status = 'failed' GROUP BY reason ORDER BY n DESC")
      .all() as Array<{ reason: string; n: number }>) {
      failures[reason] = n;
    }
    const last = this.#db.prepare('SELECT * FROM runs ORDER BY run DESC LIMIT 1').get() as RawRun | undefined;
    return {
      saved: count("SELECT count(*) AS n FROM samples WHERE status = 'saved'"),
      failed: count("SELECT count(*) AS n FROM samples WHERE status = 'failed'"),
      failures,
      pendingRetries: count("SELECT count(*) AS n FROM samples WHERE status = 'failed' AND transient = 1 AND failed_runs < ?", maxAttempts),
      lastRun: last && runRecord(last),
    };
  }

  /** Every run, oldest first. */
  runs(): RunRecord[] {
    return (this.#db.prepare('SELECT * FROM runs ORDER BY run').all() as RawRun[]).map(runRecord);
  }

  /** The database, for readers that walk the whole state (the report). */
  get database(): DatabaseHandle {
    return this.#db;
  }

  close(): void {
    this.#db.close();
  }
}

function prepareWrites(db: DatabaseHandle) {
  const saved = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO samples (id, status, reason, transient, failed_runs, last_run, width, height, bytes, updated_at,
       url, detail, bytes_fetched, original_width, original_height, caption_source, caption_words)
     VALUES (@id, 'saved', NULL, 0, 0, @run, @width, @height, @bytes, datetime('now'),
       @url, NULL, @bytesFetched, @originalWidth, @originalHeight, @captionSource, @captionWords)
     ON CONFLICT (id) DO UPDATE SET status = 'saved', reason = NULL, transient = 0, last_run = @run,
       width = @width, height = @height, bytes = @bytes, updated_at = datetime('now'), url = @url, detail = NULL,
       bytes_fetched = @bytesFetched, original_width = @originalWidth, original_height = @originalHeight,
       caption_source = @captionSource, caption_words = @captionWords`,
  );
  const savedUrl = db.prepare<[{ url: string; id: string }]>('INSERT OR IGNORE INTO urls (url, id) VALUES (@url, @id)');
  const savedContent = db.prepare<[{ sha256: string; id: string }]>('INSERT OR IGNORE INTO contents (sha256, id) VALUES (@sha256, @id)');
  return {
    /** The sample, its URL and its content's hash in one transaction. */
    recordSaved: db.transaction((id: string, run: number, record: SavedRecord) => {
      const { originalSha256, ...sample } = record;
      saved.run({ id, run, ...sample });
      savedUrl.run({ url: record.url, id });
      savedContent.run({ sha256: originalSha256, id });
    }),
    contentOwner: db.prepare<[string], { id: string }>('SELECT id FROM contents WHERE sha256 = ?'),
    failed: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO samples (id, status, reason, transient, failed_runs, last_run, updated_at, url, detail, bytes_fetched)
       VALUES (@id, 'failed', @reason, @transient, 1, @run, datetime('now'), @url, @detail, @bytesFetched)
       ON CONFLICT (id) DO UPDATE SET status = 'failed', reason = @reason, transient = @transient,
         failed_runs = failed_runs + (CASE WHEN last_run = @run THEN 0 ELSE 1 END), last_run = @run,
         updated_at = datetime('now'), url = coalesce(@url, url), detail = @detail, bytes_fetched = @bytesFetched
       WHERE status = 'failed'`,
    ),
    skipped: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO skips (id, reason, url, run, updated_at) VALUES (@id, @reason, @url, @run, datetime('now'))
       ON CONFLICT (id) DO UPDATE SET reason = @reason, url = @url, run = @run, updated_at = datetime('now')`,
    ),
    slowDowns: db.prepare<[string, number]>('INSERT INTO hosts (host, slow_downs) VALUES (?, ?) ON CONFLICT (host) DO UPDATE SET slow_downs = slow_downs + excluded.slow_downs'),
  };
}

function runRecord(raw: RawRun): RunRecord {
  const json = (text: string | null | undefined) => (text ? (JSON.parse(text) as Record<string, never>) : null);
  return {
    run: raw.run,
    pid: raw.pid,
    startedAt: raw.started_at,
    endedAt: raw.ended_at,
    exit: raw.exit,
    rows: raw.rows,
    saved: raw.saved,
    failed: raw.failed,
    skipped: raw.skipped,
    failures: json(raw.failures) ?? {},
    skips: json(raw.skips) ?? {},
    settings: json(raw.settings),
  };
}

interface RawSample {
  status: 'saved' | 'failed';
  reason: string | null;
  transient: number;
  failed_runs: number;
  last_run: number;
}

interface RawRun {
  run: number;
  pid: number;
  started_at: string;
  ended_at: string | null;
  exit: string | null;
  rows: number;
  saved: number;
  failed: number;
  skipped: number;
  /** Absent or null in a state from before they were recorded. */
  failures?: string | null;
  skips?: string | null;
  settings?: string | null;
}
