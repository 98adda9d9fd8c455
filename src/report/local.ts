/**
 * The report of an output written on one machine: its resume state (`.pipeline/state.sqlite`)
 * and, for the built-in sinks, the sink's index of what it stored, both read read-only
 * (SQLite in WAL mode lets a reader see a consistent snapshot while a run goes on writing),
 * one row at a time.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { UsageError, errorMessage } from '../errors.js';
import { IMAGE_DEFAULTS } from '../image/options.js';
import type { SizeRule } from '../image/size-rule.js';
import { DATALOADER_FILE, simpleTunerConfig } from '../sinks/simpletuner.js';
import { STATE_DIR, StateStore, type RunRecord } from '../state/store.js';
import { openDatabase } from '../util/sqlite.js';
import { DEFAULT_ALIGNMENT, type BucketSettings, type ResolutionType } from './buckets.js';
import { HashSample, dirThumbnails, shardThumbnails } from './contact-sheet.js';
import { ReportBuilder, type OutcomeRow } from './gather.js';
import type { ReportData, Thumbnail } from './html/data.js';

export interface DatasetReportOptions {
  /** Buckets with fewer images than this are flagged. */
  readonly batchSize: number;
  /** Thumbnails on the contact sheet, at most. */
  readonly thumbnails: number;
}

const BUILT_IN_SINKS = ['dir', 'webdataset', 'parquet'] as const;

export async function gatherLocal(output: string, options: DatasetReportOptions): Promise<ReportData> {
  let store: StateStore;
  try {
    store = StateStore.open(output, { readonly: true });
  } catch (error) {
    throw new UsageError(`no state in ${output} (${errorMessage(error)}): has a run written there?`);
  }
  try {
    const db = store.database;
    const runs = store.runs();
    const settings = latestSettings(runs);
    const sink = typeof settings?.sink === 'string' ? settings.sink : BUILT_IN_SINKS.find((name) => existsSync(indexPath(output, name))) ?? 'custom';
    const missing: string[] = [];
    const { buckets, note } = await bucketSettings(output, sink, settings, missing);
    const index = (BUILT_IN_SINKS as readonly string[]).includes(sink) && existsSync(indexPath(output, sink)) ? openDatabase(indexPath(output, sink), { readonly: true }) : undefined;
    try {
      const builder = new ReportBuilder({ title: output, sink, batchSize: options.batchSize, buckets, resolutionNote: note, storedRows: index !== undefined });
      for (const row of outcomes(db)) builder.outcome(row);
      const picked = new HashSample<string>(sink === 'dir' ? options.thumbnails : 0);
      if (index) {
        for (const row of storedRows(index)) {
          builder.stored(row);
          picked.offer(row.id, row.filename);
        }
      } else if (sink !== 'null') {
        missing.push(`captions and the contact sheet: the ${sink} sink keeps no record this report can read`);
      }
      const thumbnails: Thumbnail[] =
        sink === 'dir' ? await dirThumbnails(output, picked.picked) : sink === 'webdataset' || sink === 'parquet' ? await shardThumbnails(output, sink === 'webdataset' ? 'tar' : 'parquet', options.thumbnails) : [];
      const seconds = runSeconds(runs);
      return builder.finish({ thumbnails, slowDowns: slowDowns(db), missing, ...(seconds ? { runSeconds: seconds } : {}) });
    } finally {
      index?.close();
    }
  } finally {
    store.close();
  }
}

function indexPath(output: string, sink: string): string {
  return join(output, STATE_DIR, `${sink}-index.sqlite`);
}

/** The settings the latest run that recorded them was started with. */
function latestSettings(runs: readonly RunRecord[]): Record<string, unknown> | undefined {
  for (let i = runs.length - 1; i >= 0; i--) if (runs[i]!.settings) return runs[i]!.settings!;
  return undefined;
}

/**
 * The resolution SimpleTuner will bucket at: for `dir`, what its dataloader config says;
 * otherwise the config the run's size rule would give (sinks/simpletuner.ts).
 */
async function bucketSettings(output: string, sink: string, settings: Record<string, unknown> | undefined, missing: string[]): Promise<{ buckets: BucketSettings; note: string }> {
  const alignment = DEFAULT_ALIGNMENT;
  const aligned = `sides snapped to multiples of ${alignment} (SimpleTuner's default --aspect_bucket_alignment; some models use 16)`;
  if (sink === 'dir') {
    const config = await readFile(join(output, DATALOADER_FILE), 'utf8').then((text) => JSON.parse(text) as Array<{ resolution?: number; resolution_type?: ResolutionType }>, () => undefined);
    const dataset = config?.[0];
    if (dataset?.resolution !== undefined && dataset.resolution_type !== undefined) {
      return { buckets: { resolution: dataset.resolution, resolutionType: dataset.resolution_type, alignment }, note: `Resolution ${dataset.resolution}, resolution_type ${dataset.resolution_type}, as ${DATALOADER_FILE} sets them; ${aligned}.` };
    }
  }
  const rule = sizeRuleOf(settings);
  if (!rule) missing.push('the size settings of the runs (recorded from this version on): the buckets assume the defaults, --resize shortest --resolution 1024');
  const [dataset] = simpleTunerConfig(output, rule ?? IMAGE_DEFAULTS) as Array<{ resolution: number; resolution_type: ResolutionType }>;
  return {
    buckets: { resolution: dataset!.resolution, resolutionType: dataset!.resolution_type, alignment },
    note: `Resolution ${dataset!.resolution}, resolution_type ${dataset!.resolution_type}, as a SimpleTuner config for the run's --resize would set them; ${aligned}.`,
  };
}

function sizeRuleOf(settings: Record<string, unknown> | undefined): SizeRule | undefined {
  if (!settings || typeof settings.resize !== 'string') return undefined;
  return settings as unknown as SizeRule;
}

/** Every sample's outcome, then every skipped duplicate, from whichever columns the state has. */
function* outcomes(db: Database): Generator<OutcomeRow> {
  const has = columnsOf(db, 'samples');
  const column = (name: string) => (has.has(name) ? name : 'NULL');
  const rows = db
    .prepare(
      `SELECT id, status, reason, updated_at, ${column('url')}, ${column('detail')}, bytes, ${column('bytes_fetched')}, width, height,
        ${column('original_width')}, ${column('original_height')}, ${column('caption_source')}, ${column('caption_words')} FROM samples`,
    )
    .raw(true)
    .iterate() as IterableIterator<unknown[]>;
  for (const [id, status, reason, updatedAt, url, detail, bytes, bytesFetched, width, height, originalWidth, originalHeight, captionSource, captionWords] of rows) {
    yield strip({
      id: String(id),
      status: status as 'saved' | 'failed',
      reason: reason as string | null,
      at: timeOf(updatedAt),
      url: url as string | null,
      detail: detail as string | null,
      bytesWritten: bytes as number | null,
      bytesFetched: bytesFetched as number | null,
      width: width as number | null,
      height: height as number | null,
      originalWidth: originalWidth as number | null,
      originalHeight: originalHeight as number | null,
      captionSource: captionSource as 'caption' | 'fallback' | null,
      captionWords: captionWords as number | null,
    });
  }
  if (!tableExists(db, 'skips')) return;
  for (const [id, reason, url, updatedAt] of db.prepare('SELECT id, reason, url, updated_at FROM skips').raw(true).iterate() as IterableIterator<unknown[]>) {
    yield strip({ id: String(id), status: 'skipped', reason: reason as string, url: url as string | null, at: timeOf(updatedAt) });
  }
}

/** A stored sample from a sink's index: what it stored, with its file name (relative to the output). */
function* storedRows(index: Database) {
  const rows = index.prepare('SELECT id, filename, caption, width, height, original_width, original_height FROM samples WHERE committed = 1').raw(true).iterate() as IterableIterator<unknown[]>;
  for (const [id, filename, caption, width, height, originalWidth, originalHeight] of rows) {
    yield { id: String(id), filename: String(filename), caption: caption as string | null, width: Number(width), height: Number(height), originalWidth: Number(originalWidth), originalHeight: Number(originalHeight) };
  }
}

function slowDowns(db: Database): Map<string, number> | undefined {
  if (!tableExists(db, 'hosts')) return undefined;
  return new Map(db.prepare('SELECT host, slow_downs FROM hosts').raw(true).all() as Array<[string, number]>);
}

/** How long the runs that ended ran, in all (the gaps between them left out). */
function runSeconds(runs: readonly RunRecord[]): number | undefined {
  let seconds = 0;
  for (const run of runs) {
    const start = timeOf(run.startedAt);
    const end = timeOf(run.endedAt);
    if (start !== undefined && end !== undefined) seconds += Math.max(0, end - start) / 1000;
  }
  return seconds > 0 ? seconds : undefined;
}

/** SQLite's `datetime('now')` text (UTC) as milliseconds. */
function timeOf(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const ms = Date.parse(`${text.replace(' ', 'T')}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

function columnsOf(db: Database, table: string): Set<string> {
  return new Set((db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: string }>).map(({ name }) => name));
}

function tableExists(db: Database, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

/** The row without its null fields (a state from before a field was recorded has nulls there). */
function strip<T extends object>(row: { [K in keyof T]: T[K] | null }): OutcomeRow {
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== null && value !== undefined)) as unknown as OutcomeRow;
}
