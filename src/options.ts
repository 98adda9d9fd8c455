/**
 * One options object for the whole run. The CLI (or a library caller) gives a partial
 * `PipelineOptions`; `resolveOptions` fills defaults, validates once and freezes the
 * result. Stages receive only the part they need and never read argv or the environment.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute, normalize } from 'node:path';
import type { Readable } from 'node:stream';
import type { ImageFormat } from './types.js';
import { RESIZE_MODES, type SizeFilters, type SizeRule } from './image/size-rule.js';
import type { SinkFactory } from './sinks/contract.js';
import type { RowRange } from './sources/parquet.js';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { UsageError } from './errors.js';
import { inputName, withoutCompression } from './sources/compression.js';
import { DEFAULT_MAX_ROW_BYTES } from './sources/row-size.js';
import { DEFAULT_DISALLOWED_ROBOTS_TAGS } from './fetch/robots.js';

export type InputFormat = 'ndjson' | 'csv' | 'parquet';

export interface ColumnNames {
  readonly id: string;
  readonly url: string;
  readonly caption: string;
  readonly fallbackCaption: string;
  readonly width: string;
  readonly height: string;
  /** A column holding the sha256 the fetched bytes must have (`--verify-hash-column`); none by default. */
  readonly hash?: string;
}

export interface InputOptions {
  /** A file to read; when absent, rows come from `stream` (the CLI passes stdin). */
  readonly path?: string;
  /** Several files (or what globs matched), read one after another as one stream of rows. */
  readonly paths?: readonly string[];
  readonly stream?: Readable;
  readonly format: InputFormat;
  readonly columns: ColumnNames;
  /** Only rows `first` to `last` (1-based, inclusive: NDJSON lines, CSV records, Parquet rows). */
  readonly rows?: RowRange;
  /**
   * NDJSON and CSV: where exactly the `rows` are in the file, so only those bytes are read
   * (a queue job; `enqueue` finds the offsets). CSV reads its header line first.
   */
  readonly window?: ByteWindow;
  /** `--keep-columns`: input columns carried into the metadata, or every column. */
  readonly keep?: readonly string[] | 'all';
  /**
   * `--max-row-bytes`: the longest row read (an NDJSON line, a CSV record, a Parquet row's
   * text and binary cells); a longer one fails as `bad_row` without being held whole.
   * `resolveOptions` always sets it (DEFAULT_MAX_ROW_BYTES); a job's input (queue) may not.
   */
  readonly maxRowBytes?: number;
}

/** Bytes [start, end) of a text input; for CSV, after its first `headerBytes` bytes (the header line). */
export interface ByteWindow {
  readonly start: number;
  readonly end: number;
  readonly headerBytes?: number;
}

export interface FetchOptions {
  /** Requests in flight at once, over all hosts. */
  readonly concurrency: number;
  /** Requests in flight at once to one host (the starting point of its AIMD limit). */
  readonly perHostConcurrency: number;
  /** Requests started per second per host; 0 for no limit. */
  readonly ratePerSecond: number;
  /** Total deadline for one attempt, including time queued for a connection, in milliseconds. */
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** From sending the request to the end of the response headers. */
  readonly headersTimeoutMs: number;
  /** The longest gap between two pieces of the body. */
  readonly idleTimeoutMs: number;
  /** A body larger than this is abandoned while it streams. */
  readonly maxBytes: number;
  /** Extra attempts after a transient failure (timeouts, resets, 5xx, truncated bodies). */
  readonly retries: number;
  /** How long one sample may keep being told to wait (429, 503) before it fails, in milliseconds. */
  readonly patienceMs: number;
  /** The first backoff before a retry; each further retry doubles it (with jitter). */
  readonly retryDelayMs: number;
  readonly userAgent: string;
  /** Honour the X-Robots-Tag opt-out (false: `--ignore-robots-tag`). */
  readonly respectRobotsTag: boolean;
  /** X-Robots-Tag directives that opt an image out, lower case (`noai`, `noimageai` by default). */
  readonly disallowedRobotsTags: readonly string[];
  /** Ask imgix-style CDNs on these hosts for an image already scaled near the target. */
  readonly cdnResizeHosts: readonly string[];
  /** `--proxy`: fetch through this proxy; otherwise HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply. */
  readonly proxy?: string;
  /** `--insecure`: accept any TLS certificate. */
  readonly insecure: boolean;
  /** `--http2`: offer HTTP/2 to HTTPS hosts. */
  readonly http2: boolean;
}

export interface ImageOptions extends SizeRule, SizeFilters {
  /** Don't store images smaller than the target (with upscaling off) at all. */
  readonly skipSmall: boolean;
  /** `original` (with `--resize none`) stores the fetched bytes untouched. */
  readonly format: ImageFormat | 'original';
  /** Quality for jpeg and webp. */
  readonly quality: number;
  /** Lossless webp. */
  readonly lossless: boolean;
  /** Keep transparency (png and webp) instead of flattening onto white. */
  readonly keepAlpha: boolean;
  /** zlib level for png, 0 (fastest, largest) to 9 (slowest, smallest). */
  readonly pngCompressionLevel: number;
  /**
   * PNG row filters: `adaptive` picks the best filter per row (as PIL and libpng's own
   * default do: files about 35% smaller), `none` skips the search (faster, larger).
   */
  readonly pngFilter: PngFilter;
  /** JPEG chroma subsampling: `4:2:0` as PIL, OpenCV and img2dataset write, or full-resolution `4:4:4`. */
  readonly chromaSubsampling: ChromaSubsampling;
  /** Refuse images whose header declares more pixels than this, before decoding. */
  readonly maxPixels: number;
  /** Images decoded and encoded at once. */
  readonly concurrency: number;
}

export interface ReportOptions {
  readonly resultsPath?: string;
  readonly summaryPath?: string;
  /** Prometheus text-format counters, rewritten every few seconds. */
  readonly metricsPath?: string;
  /** A live progress bar (on a terminal) instead of plain lines. */
  readonly progressBar: boolean;
  readonly quiet: boolean;
  /** Interval between plain progress lines on stderr; 0 turns them off. */
  readonly logEveryMs: number;
}

export interface ResumeOptions {
  /** Keep state in `{output}/.pipeline` and skip what earlier runs finished. */
  readonly enabled: boolean;
  /** Runs a transiently failing sample is tried in, in total. */
  readonly maxAttempts: number;
  /** Try every failed sample once more. */
  readonly retryFailed: boolean;
  /** Skip a row whose URL was already saved under another id (`--dedupe url`). */
  readonly dedupeUrls: boolean;
}

export interface Options {
  readonly input: InputOptions;
  readonly resume: ResumeOptions;
  /** After a stop signal, how long rows in flight may take to finish. */
  readonly graceMs: number;
  readonly fetch: FetchOptions;
  readonly image: ImageOptions;
  /** `dir`, `webdataset`, `parquet`, `null`, a module path or package name, or a factory (from code). */
  readonly sink: string | SinkFactory;
  /** Samples per shard for the shard sinks. */
  readonly samplesPerShard: number;
  readonly output: string;
  /**
   * The absolute path the output folder will have when a trainer reads it (the GPU
   * machine it is copied to); the output's own absolute path when absent.
   */
  readonly dataloaderRoot?: string;
  /** How often the dataset-wide files (metadata.parquet) are refreshed during a run; 0: at the end only. */
  readonly metadataEveryMs: number;
  /** dir sink: spread sample files over this many folders; 0 keeps them in the output folder. */
  readonly subfolders: number;
  readonly report: ReportOptions;
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends Function | readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

/** What a caller may pass: every field optional except `output`. */
export type PipelineOptions = DeepPartial<Options> & { readonly output: string };

export const VERSION = '0.1.0';
/**
 * The tool and its version, nothing more: there is no project web page to point at. Polite
 * crawlers add a way to reach the operator, which only the user has: the README asks for
 * `--user-agent "photo-concept-pipeline/0.1.0 (+mailto:you@example.org)"`.
 */
export const DEFAULT_USER_AGENT = `photo-concept-pipeline/${VERSION}`;

/** Hosts `--cdn-resize` applies to: imgix-style CDNs that scale on request. */
export const IMGIX_STYLE_HOSTS: readonly string[] = ['images.pexels.com'];

export const DEFAULT_COLUMNS: ColumnNames = Object.freeze({
  id: 'id',
  url: 'url',
  caption: 'cogvlm_caption',
  fallbackCaption: 'tags',
  width: 'width',
  height: 'height',
});

export type PngFilter = 'adaptive' | 'none';
export const PNG_FILTERS: readonly PngFilter[] = ['adaptive', 'none'];
export type ChromaSubsampling = '4:2:0' | '4:4:4';
export const CHROMA_SUBSAMPLINGS: readonly ChromaSubsampling[] = ['4:2:0', '4:4:4'];

export const DEFAULT_QUALITY: Readonly<Record<ImageFormat, number>> = { png: 100, jpeg: 95, webp: 90 };

const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];
const INPUT_FORMATS: readonly InputFormat[] = ['ndjson', 'csv', 'parquet'];

/**
 * The input format a file name implies (a `.gz` or `.zst` suffix aside), or NDJSON; a
 * format the user gave wins.
 */
export function inferInputFormat(path: string | undefined, given?: InputFormat): InputFormat {
  if (given !== undefined) return given;
  if (path === undefined) return 'ndjson';
  const lower = withoutCompression(inputName(path)).toLowerCase();
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.csv')) return 'csv';
  return 'ndjson';
}

export function resolveOptions(given: PipelineOptions): Options {
  if (!given.output) throw new UsageError('--output is required: the folder to write the dataset into');
  const paths = expandInputs(given.input?.paths ?? (given.input?.path === undefined ? [] : [given.input.path]));
  const path = paths.length === 1 ? paths[0] : undefined;
  const format = inferInputFormat(paths[0], given.input?.format);
  oneOf('--input-format', format, INPUT_FORMATS);
  if (paths.length > 1) {
    const formats = new Set(paths.map((each) => inferInputFormat(each, given.input?.format)));
    if (formats.size > 1) throw new UsageError(`the inputs are of different formats (${[...formats].join(', ')}): give files of one format, or --input-format`);
    if (given.input?.rows !== undefined) throw new UsageError('--rows reads part of one input: give one --input with it');
  }
  const resize = given.image?.resize ?? 'shortest';
  oneOf('--resize', resize, RESIZE_MODES);
  // With --resize none and no --format, the fetched bytes are kept as they are.
  const imageFormat = given.image?.format ?? (resize === 'none' ? 'original' : 'png');
  oneOf('--format', imageFormat, [...IMAGE_FORMATS, 'original']);
  if (imageFormat === 'original' && resize !== 'none') {
    throw new UsageError('--format original keeps the fetched bytes: it needs --resize none');
  }
  const keepAlpha = given.image?.keepAlpha ?? false;
  const pngFilter = given.image?.pngFilter ?? 'adaptive';
  oneOf('--png-filter', pngFilter, PNG_FILTERS);
  const chromaSubsampling = given.image?.chromaSubsampling ?? '4:2:0';
  oneOf('--chroma-subsampling', chromaSubsampling, CHROMA_SUBSAMPLINGS);
  if (given.resume?.dedupeUrls && given.resume.enabled === false) {
    throw new UsageError('--dedupe url needs the resume state (it remembers which URLs were saved): drop --no-resume');
  }
  if (keepAlpha && imageFormat === 'jpeg') throw new UsageError('--keep-alpha needs --format png or webp: jpeg has no alpha');

  const options: Options = {
    input: {
      ...(path === undefined ? {} : { path }),
      ...(paths.length > 1 ? { paths } : {}),
      ...(given.input?.stream === undefined ? {} : { stream: given.input.stream }),
      format,
      columns: { ...DEFAULT_COLUMNS, ...stripUndefined(given.input?.columns ?? {}) },
      ...(given.input?.rows === undefined ? {} : { rows: rowRange(given.input.rows) }),
      ...(given.input?.window === undefined ? {} : { window: given.input.window }),
      ...(given.input?.keep === undefined ? {} : { keep: given.input.keep === 'all' ? 'all' : [...given.input.keep] }),
      maxRowBytes: integer('--max-row-bytes', given.input?.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES, 1024, 2 ** 31 - 1),
    },
    fetch: {
      concurrency: integer('--concurrency', given.fetch?.concurrency ?? 16, 1, 1024),
      perHostConcurrency: integer('--per-host-concurrency', given.fetch?.perHostConcurrency ?? 16, 1, 1024),
      ratePerSecond: positive('--rate', given.fetch?.ratePerSecond ?? 0),
      timeoutMs: integer('--timeout', given.fetch?.timeoutMs ?? 60_000, 1, 24 * 3600_000),
      connectTimeoutMs: integer('--connect-timeout', given.fetch?.connectTimeoutMs ?? 10_000, 1, 24 * 3600_000),
      headersTimeoutMs: integer('--headers-timeout', given.fetch?.headersTimeoutMs ?? 30_000, 1, 24 * 3600_000),
      idleTimeoutMs: integer('--idle-timeout', given.fetch?.idleTimeoutMs ?? 30_000, 1, 24 * 3600_000),
      maxBytes: integer('--max-bytes', given.fetch?.maxBytes ?? 64 * 1024 * 1024, 1, 2 ** 31 - 1),
      retries: integer('--retries', given.fetch?.retries ?? 3, 0, 100),
      patienceMs: integer('--patience', given.fetch?.patienceMs ?? 600_000, 0, 7 * 24 * 3600_000),
      retryDelayMs: integer('--retry-delay', given.fetch?.retryDelayMs ?? 1000, 0, 3600_000),
      userAgent: given.fetch?.userAgent ?? DEFAULT_USER_AGENT,
      respectRobotsTag: given.fetch?.respectRobotsTag ?? true,
      disallowedRobotsTags: (given.fetch?.disallowedRobotsTags ?? DEFAULT_DISALLOWED_ROBOTS_TAGS).map((tag) => tag.trim().toLowerCase()).filter(Boolean),
      cdnResizeHosts: [...(given.fetch?.cdnResizeHosts ?? [])].map((host) => host.toLowerCase()),
      ...(given.fetch?.proxy === undefined ? {} : { proxy: proxyUrl(given.fetch.proxy) }),
      insecure: given.fetch?.insecure ?? false,
      http2: given.fetch?.http2 ?? false,
    },
    image: {
      resize,
      resolution: integer('--resolution', given.image?.resolution ?? 1024, 8, 65_536),
      megapixels: aboveZero('--megapixels', given.image?.megapixels ?? 1),
      round: integer('--round', given.image?.round ?? 64, 1, 4096),
      upscale: given.image?.upscale ?? true,
      skipSmall: given.image?.skipSmall ?? false,
      minMegapixels: positive('--min-megapixels', given.image?.minMegapixels ?? 0),
      minSide: integer('--min-side', given.image?.minSide ?? 0, 0, 1_000_000),
      maxAspect: positive('--max-aspect', given.image?.maxAspect ?? 0),
      format: imageFormat,
      quality: integer('--quality', given.image?.quality ?? (imageFormat === 'original' ? 100 : DEFAULT_QUALITY[imageFormat]), 1, 100),
      lossless: given.image?.lossless ?? false,
      keepAlpha,
      pngCompressionLevel: integer('--png-compression', given.image?.pngCompressionLevel ?? 6, 0, 9),
      pngFilter,
      chromaSubsampling,
      maxPixels: integer('--max-pixels', given.image?.maxPixels ?? 100_000_000, 1, Number.MAX_SAFE_INTEGER),
      concurrency: integer('--image-concurrency', given.image?.concurrency ?? availableParallelism(), 1, 256),
    },
    resume: {
      enabled: given.resume?.enabled ?? true,
      maxAttempts: integer('--max-attempts', given.resume?.maxAttempts ?? 5, 1, 1000),
      retryFailed: given.resume?.retryFailed ?? false,
      dedupeUrls: given.resume?.dedupeUrls ?? false,
    },
    graceMs: integer('--grace', given.graceMs ?? 30_000, 0, 24 * 3600_000),
    sink: given.sink ?? 'dir',
    samplesPerShard: integer('--samples-per-shard', given.samplesPerShard ?? 1000, 1, 10_000_000),
    output: given.output,
    ...(given.dataloaderRoot === undefined ? {} : { dataloaderRoot: absolutePath('--dataloader-root', given.dataloaderRoot) }),
    metadataEveryMs: integer('--metadata-every', given.metadataEveryMs ?? 300_000, 0, 24 * 3600_000),
    subfolders: integer('--subfolders', given.subfolders ?? 0, 0, 1_000_000),
    report: {
      ...(given.report?.resultsPath === undefined ? {} : { resultsPath: given.report.resultsPath }),
      ...(given.report?.summaryPath === undefined ? {} : { summaryPath: given.report.summaryPath }),
      ...(given.report?.metricsPath === undefined ? {} : { metricsPath: given.report.metricsPath }),
      progressBar: given.report?.progressBar ?? false,
      quiet: given.report?.quiet ?? false,
      logEveryMs: integer('--log-every', given.report?.logEveryMs ?? 60_000, 0, 24 * 3600_000),
    },
  };
  return deepFreeze(options);
}

/**
 * Input paths with globs expanded (`shards/*.parquet`, quoted so that the shell leaves it
 * to us), in name order; a pattern that matches nothing is an error. URLs are left alone.
 */
function expandInputs(patterns: readonly string[]): string[] {
  const paths: string[] = [];
  for (const pattern of patterns) {
    if (/^https?:\/\//i.test(pattern) || !isDynamicPattern(pattern)) {
      paths.push(pattern);
      continue;
    }
    // Matches are given as the pattern was: absolute for an absolute pattern, else relative.
    const matches = globSync(pattern, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(pattern) }).sort();
    if (matches.length === 0) throw new UsageError(`--input ${pattern} matches no file`);
    paths.push(...matches);
  }
  return paths;
}

function proxyUrl(value: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new UsageError(`--proxy must be an http:// or https:// URL, e.g. http://proxy.example:3128, got ${JSON.stringify(value)}`);
  }
  return value;
}

function rowRange(rows: RowRange): RowRange {
  const first = integer('--rows (first)', rows.first, 1, Number.MAX_SAFE_INTEGER);
  const last = integer('--rows (last)', rows.last, first, Number.MAX_SAFE_INTEGER);
  return { first, last };
}

function integer(flag: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A path on the machine that will read the output: it must not depend on this one's working directory. */
export function absolutePath(flag: string, value: string): string {
  if (!isAbsolute(value)) throw new UsageError(`${flag} must be an absolute path (where the output folder will be), got ${JSON.stringify(value)}`);
  return normalize(value).replace(/(.)\/+$/, '$1');
}

function aboveZero(flag: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a number above 0, got ${String(value)}`);
  return value;
}

function positive(flag: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${flag} must be a number of at least 0, got ${String(value)}`);
  return value;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): asserts value is T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !isStream(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function isStream(value: object): boolean {
  return typeof (value as { pipe?: unknown }).pipe === 'function';
}
