/**
 * The one sink contract. Built-in sinks (`dir`, `null`) implement exactly what a user's
 * module does: a factory that opens the sink, `write` for each sample, `close` once.
 *
 * A sink is told what to write and says when it has written it; it knows nothing about
 * fetching or decoding. `write` returns a promise: the pipeline keeps at most
 * `concurrency` writes pending, so a slow sink slows the whole pipeline instead of
 * letting samples pile up in memory.
 */
import type { SizeRule } from '../image/size-rule.js';
import type { CaptionSource, ImageFormat, StoredFormat } from '../types.js';
import type { KeptColumn } from '../sources/kept-columns.js';

/** One training sample, ready to store. */
export interface Sample {
  /** The row's id; already checked to be safe as a file name. */
  readonly id: string;
  /**
   * The caption on one line (newlines folded to spaces); null when the row had none and
   * the run keeps such rows (`--missing-captions keep`).
   */
  readonly caption: string | null;
  /** Where the caption came from: the caption column, the fallback column, or none. */
  readonly captionSource: CaptionSource;
  /** The encoded image file. */
  readonly image: Buffer;
  /** sha256 of `image` (lower-case hex). */
  readonly sha256: string;
  /** sha256 of the bytes fetched, before any re-encode. */
  readonly originalSha256: string;
  /** png, jpeg or webp; with `--resize none` and no `--format`, the fetched file's own format. */
  readonly format: StoredFormat;
  /** The usual file extension for `format`: png, jpg, webp (gif, tif, avif, heif for originals). */
  readonly extension: string;
  /** Size of the stored image. */
  readonly width: number;
  readonly height: number;
  /** Size of the fetched image, after EXIF orientation. */
  readonly originalWidth: number;
  readonly originalHeight: number;
  readonly url: string;
  /** Every column read from the source row. */
  readonly row: Readonly<Record<string, unknown>>;
}

export interface SinkWriteResult {
  /** Bytes stored for this sample (for the summary); defaults to the image's size. */
  readonly bytesWritten?: number;
}

export interface Sink {
  /**
   * Store one sample. Resolve only once it is written (so a crash after the promise
   * settles does not lose it). Reject to fail this sample; reject with an error whose
   * `code` is ENOSPC, EDQUOT, EROFS, EACCES or EPERM (or a `SinkError`) to stop the run.
   */
  write(sample: Sample): Promise<SinkWriteResult | void>;
  /** Called once, after the last write has settled. Flush and release everything. */
  close(): Promise<void>;
  /**
   * Whether the sink still holds the sample with this id, asked on resume for samples the
   * state records as saved: `false` has it fetched again. Without `has`, the state alone
   * decides.
   */
  has?(id: string): Promise<boolean>;
  /** How many writes may be pending at once. Default 1. */
  readonly concurrency?: number;
}

/**
 * How the shard sinks name and describe what they write: `native` (keys are the row ids,
 * the `.json` holds every input column) or `img2dataset` (the shard names, sample keys
 * and fields img2dataset's writers produce, so tools written for its shards read ours).
 */
export type Layout = 'native' | 'img2dataset';

/** What a sink factory is given when the run opens it. */
export interface SinkContext {
  /** The `--output` folder (created before the sink is opened). */
  readonly output: string;
  /** The output format, or `original` when fetched files are stored as they are. */
  readonly format: ImageFormat | 'original';
  /** For sinks that write shards: samples per shard (`--samples-per-shard`). */
  readonly samplesPerShard: number;
  /** Writes a line to the run's log (stderr), unless --quiet. */
  readonly log: (message: string) => void;
  /** How the run sizes images (`--resize` and the flags that go with it). */
  readonly sizeRule: SizeRule;
  /**
   * The absolute path the output folder will have where a trainer reads it
   * (`--dataloader-root`); the output's own absolute path by default.
   */
  readonly datasetRoot: string;
  /** How often a sink that keeps dataset-wide files refreshes them during a run, in ms; 0: at close only. */
  readonly metadataEveryMs: number;
  /** `--subfolders`: spread sample files over this many folders (0 or absent: all in the output folder). */
  readonly subfolders?: number;
  /** `--layout` (absent: native); see docs/sinks.md. */
  readonly layout?: Layout;
  /** `--keep-columns`: input columns to carry into the sink's metadata, with their types; each sample's values are in `sample.row`. */
  readonly keptColumns?: readonly KeptColumn[];
  /** Set when many workers write this output at once (the `worker` command); see SharedOutput. */
  readonly shared?: SharedOutput;
}

/**
 * Given to a sink when many queue workers, on one machine or many, write one output
 * folder (a shared filesystem) at once. Each runs one job (a range of input rows) at a
 * time and may die at any point; its job is then taken again by another worker.
 *
 * A sink in this mode keeps no database of its own beside the output (SQLite over a
 * network filesystem is not safe) and removes no other process's temporary files (they
 * may belong to a live worker on another machine): the `finalize` command does that once
 * the queue has drained.
 */
export interface SharedOutput {
  /**
   * The job's name, e.g. `rows-000000001-000000050`. Files named after it never collide
   * between workers, and an attempt that takes over a dead worker's job writes the same
   * names again.
   */
  readonly job: string;
  /** Unique to this attempt at the job (host, pid, a random part): for files only it writes. */
  readonly attempt: string;
  /** The shared record of completed shards, for the shard sinks. */
  readonly shards: SharedShardLedger;
}

export interface SharedShardLedger {
  /** How many shards of `job` earlier attempts completed (shards 0 to n-1). */
  completed(job: string): Promise<number>;
  /** Records shard `shard` of `job` complete, holding these samples, in one step. */
  complete(job: string, shard: number, ids: readonly string[]): Promise<void>;
  /** Whether a completed shard holds the sample. */
  holds(id: string): Promise<boolean>;
}

/**
 * Thrown (or any error with `transient: false`) by `write` to refuse a sample for a
 * reason that another attempt cannot change: the sample fails as `sink_refused` and is
 * not tried again on later runs. Other errors fail it as `sink_error`, which is retried.
 */
export class SampleRefused extends Error {
  override readonly name = 'SampleRefused';
  readonly transient = false;
}

/** A sink module's default export (or its `createSink` export). */
export type SinkFactory = (context: SinkContext) => Sink | Promise<Sink>;
