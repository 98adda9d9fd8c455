/**
 * One options object for the whole run, composed of the option types each subsystem owns
 * (sources, fetch, image, sinks, state, report). A caller (the CLI, a queue worker, code
 * using the library) gives a partial `PipelineOptions`; `resolveOptions` has each
 * subsystem fill its defaults and check its part once, checks what spans parts, and
 * freezes the result. Stages receive only the part they need and never read argv or the
 * environment. Nothing below this module imports it.
 */
import { UsageError } from './errors.js';
import { resolveFetchOptions, type FetchOptions } from './fetch/options.js';
import { resolveImageOptions, type ImageOptions } from './image/options.js';
import { resolveReportOptions, type ReportOptions } from './report/options.js';
import { resolveSinkOptions, type SinkOptions } from './sinks/options.js';
import { resolveInputOptions, type ColumnNames, type InputOptions } from './sources/options.js';
import { resolveResumeOptions, type ResumeOptions } from './state/options.js';
import { integer } from './util/validate.js';

export interface Options extends SinkOptions {
  readonly output: string;
  readonly input: InputOptions;
  readonly resume: ResumeOptions;
  readonly fetch: FetchOptions;
  readonly image: ImageOptions;
  readonly report: ReportOptions;
  /** After a stop signal, how long rows in flight may take to finish. */
  readonly graceMs: number;
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends Function | readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

/** What a caller may pass: every field optional except `output`. */
export type PipelineOptions = DeepPartial<Options> & { readonly output: string };

export const GRACE_DEFAULT_MS = 30_000;

export function resolveOptions(given: PipelineOptions | Options): Options {
  if (!given.output) throw new UsageError('--output is required: the folder to write the dataset into');
  const { output, input, resume, fetch, image, report, graceMs, ...sink } = given;
  const options: Options = {
    output,
    input: resolveInputOptions(input as Parameters<typeof resolveInputOptions>[0]),
    resume: resolveResumeOptions(resume),
    fetch: resolveFetchOptions(fetch as Partial<FetchOptions> | undefined),
    image: resolveImageOptions(image),
    report: resolveReportOptions(report),
    graceMs: integer('--grace', graceMs ?? GRACE_DEFAULT_MS, 0, 24 * 3600_000),
    ...resolveSinkOptions(sink),
  };
  // img2dataset names a shard's image member, and the Parquet shard's image column, after
  // one format (jpg, png or webp); `original` keeps each fetched file's own format.
  if (options.layout === 'img2dataset' && options.image.format === 'original') {
    throw new UsageError('--layout img2dataset stores every image in one format, named by its extension (jpg, png or webp): pass --format jpeg, png or webp (--resize none keeps the size)');
  }
  return deepFreeze(options);
}

export type { ColumnNames, FetchOptions, ImageOptions, InputOptions, ReportOptions, ResumeOptions, SinkOptions };

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
