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
  recordSaved(id: string, run: number, sample: SavedSample): void | Promise<void>;
  /** A failure never overwrites a saved sample. */
  recordFailed(id: string, run: number, reason: FailureReason): void | Promise<void>;
  /** The id a sample from this URL was saved under, if any (`--dedupe url`). */
  savedUnder(url: string): string | undefined | Promise<string | undefined>;
  /** The id a sample whose fetched bytes had this sha256 was saved under, if any (`--dedupe content`). */
  savedWithContent(sha256: string): string | undefined | Promise<string | undefined>;
}

/** What the state keeps of a saved sample. */
export interface SavedSample {
  readonly width: number;
  readonly height: number;
  /** Bytes the sink wrote. */
  readonly bytes: number;
  readonly url: string;
  /** sha256 of the fetched bytes. */
  readonly originalSha256: string;
}

export class StateStore implements ResumeState {
  readonly #db: DatabaseHandle;
  readonly #get: Statement<[string], RawSample>;
  readonly #saved: Statement<[{ id: string; run: number; width: number; height: number; bytes: number }]>;
  readonly #failed: Statement<[{ id: string; reason: string; transient: number; run: number }]>;
  readonly #savedUrl: Statement<[{ url: string; id: string }]>;
  readonly #urlOwner: Statement<[string], { id: string }>;
  /** Prepared when first used: `status` opens a state read-only, maybe one from before the table existed. */
  #contents: { readonly save: Statement<[{ sha256: string; id: string }]>; readonly owner: Statement<[string], { id: string }> } | undefined;
  readonly #recordSaved: (id: string, run: number, sample: SavedSample) => void;

  private constructor(db: DatabaseHandle) {
    this.#db = db;
    this.#get = db.prepare('SELECT status, reason, transient, failed_runs, last_run FROM samples WHERE id = ?');
    this.#saved = db.prepare(
      `INSERT INTO samples (id, status, reason, transient, failed_runs, last_run, width, height, bytes, updated_at)
       VALUES (@id, 'saved', NULL, 0, 0, @run, @width, @height, @bytes, datetime('now'))
       ON CONFLICT (id) DO UPDATE SET status = 'saved', reason = NULL, transient = 0, last_run = @run,
         width = @width, height = @height, bytes = @bytes, updated_at = datetime('now')`,
    );
    this.#failed = db.prepare(
      `INSERT INTO samples (id, status, reason, transient, failed_runs, last_run, updated_at)
       VALUES (@id, 'failed', @reason, @transient, 1, @run, datetime('now'))
       ON CONFLICT (id) DO UPDATE SET status = 'failed', reason = @reason, transient = @transient,
         failed_runs = failed_runs + (CASE WHEN last_run = @run THEN 0 ELSE 1 END), last_run = @run,
         updated_at = datetime('now')
       WHERE status = 'failed'`,
    );
    this.#savedUrl = db.prepare('INSERT OR IGNORE INTO urls (url, id) VALUES (@url, @id)');
    this.#urlOwner = db.prepare('SELECT id FROM urls WHERE url = ?');
    this.#recordSaved = db.transaction((id: string, run: number, sample: SavedSample) => {
      this.#saved.run({ id, run, width: sample.width, height: sample.height, bytes: sample.bytes });
      this.#savedUrl.run({ url: sample.url, id });
      this.#contentStatements().save.run({ sha256: sample.originalSha256, id });
    });
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
    }
    return new StateStore(db);
  }

  startRun(): number {
    const result = this.#write(() => this.#db.prepare("INSERT INTO runs (pid, started_at) VALUES (?, datetime('now'))").run(process.pid));
    return Number(result.lastInsertRowid);
  }

  endRun(run: number, exit: string, counts: { rows: number; saved: number; failed: number; skipped: number }): void {
    this.#write(() =>
      this.#db
        .prepare("UPDATE runs SET ended_at = datetime('now'), exit = ?, rows = ?, saved = ?, failed = ?, skipped = ? WHERE run = ?")
        .run(exit, counts.rows, counts.saved, counts.failed, counts.skipped, run),
    );
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
  recordSaved(id: string, run: number, sample: SavedSample): void {
    this.#write(() => this.#recordSaved(id, run, sample));
  }

  savedUnder(url: string): string | undefined {
    return this.#urlOwner.get(url)?.id;
  }

  savedWithContent(sha256: string): string | undefined {
    return this.#contentStatements().owner.get(sha256)?.id;
  }

  #contentStatements() {
    return (this.#contents ??= {
      save: this.#db.prepare('INSERT OR IGNORE INTO contents (sha256, id) VALUES (@sha256, @id)'),
      owner: this.#db.prepare('SELECT id FROM contents WHERE sha256 = ?'),
    });
  }

  /** A failure never overwrites a saved sample (a duplicate row failing later, say). */
  recordFailed(id: string, run: number, reason: FailureReason): void {
    this.#write(() => this.#failed.run({ id, reason, transient: isTransient(reason) ? 1 : 0, run }));
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
      lastRun: last && {
        run: last.run,
        pid: last.pid,
        startedAt: last.started_at,
        endedAt: last.ended_at,
        exit: last.exit,
        rows: last.rows,
        saved: last.saved,
        failed: last.failed,
        skipped: last.skipped,
      },
    };
  }

  close(): void {
    this.#db.close();
  }
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
}
