/**
 * The pipeline: row source -> resume -> fetch -> decode/resize -> sink -> record, each
 * stage a bounded, backpressured async transform, composed with Node's `stream.pipeline`
 * (which also tears every stage down if one fails).
 *
 * A run holds the output's lock and resume state for its whole life. A stop signal ends
 * reading; rows in flight get `graceMs` to finish, then are abandoned as `interrupted`;
 * either way the sink, state and reports are closed properly.
 *
 * `pipeline.ts` is the entry point: this module is loaded from there only when a run
 * really happens, so the supervising process (see process-settings.ts) stays small.
 */
import { setMaxListeners } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SinkError, errorMessage } from './errors.js';
import { createRequestPlanner } from './fetch/cdn-resize.js';
import { connectionNotes } from './fetch/dispatcher.js';
import { createFetcher, type Fetcher } from './fetch/fetcher.js';
import { createImagePool, type ImagePool } from './image/pool.js';
import { resolveOptions, type Options, type PipelineOptions } from './options.js';
import { barProgress, logProgress, silentProgress, type ProgressReporter } from './report/progress.js';
import type { SharedOutput } from './sinks/contract.js';
import { openSink } from './sinks/load.js';
import { acquireLock } from './state/lock.js';
import { STATE_DIR, StateStore, type ResumeState } from './state/store.js';
import { InFlightClaims } from './stages/claims.js';
import { contentDedupeStage } from './stages/dedupe-content.js';
import { fetchStage } from './stages/fetch.js';
import { metadataFilterStage } from './stages/filter.js';
import { imageStage } from './stages/image.js';
import { Recorder, formatSummary, type Summary } from './stages/record.js';
import { resumeStage } from './stages/resume.js';
import { sinkStage } from './stages/sink.js';
import { sourceStage } from './stages/source.js';
import { openRowSource, type RowSource, type SourceSetup } from './sources/open.js';
import { RESERVED_COLUMNS as IMG2DATASET_RESERVED_COLUMNS } from './sinks/img2dataset.js';
import { RESERVED_COLUMNS } from './sinks/metadata.js';
import { writeFileAtomically } from './util/atomic-file.js';
import { releaseFreedMemoryEvery } from './util/release-memory.js';
import { assertWritableFile } from './util/writable-path.js';
import type { Item } from './types.js';

export interface RunHooks {
  /** Where progress and failure lines go; defaults to stderr (nothing with `quiet`). */
  readonly log?: (message: string) => void;
  /** Aborting it stops the run gracefully: no new rows, in-flight rows get the grace period. */
  readonly stop?: AbortSignal;
}

export async function runPipeline(given: PipelineOptions | Options, hooks: RunHooks = {}): Promise<Summary> {
  const options = resolveOptions(given);
  const stateDir = join(options.output, STATE_DIR);
  try {
    await mkdir(stateDir, { recursive: true });
  } catch (error) {
    throw new SinkError(`cannot create output folder ${options.output}: ${errorMessage(error)}`);
  }
  // After the output folder exists: reports are often written into it.
  const { resultsPath, summaryPath, metricsPath } = options.report;
  if (resultsPath !== undefined) await assertWritableFile('--results', resultsPath);
  if (summaryPath !== undefined) await assertWritableFile('--summary', summaryPath);
  if (metricsPath !== undefined) await assertWritableFile('--metrics-file', metricsPath);
  const source = await openRowSource(options.input, sourceSetup(options));
  try {
    // Taken with --no-resume too: two runs writing one output would pick the same shard names.
    const lock = await acquireLock(stateDir);
    try {
      return await runLocked(options, source, hooks);
    } finally {
      await lock.release();
    }
  } finally {
    await source.close();
  }
}

/** What a run records of how it writes (the report buckets its images by it). */
function runSettings(options: Options): Record<string, unknown> {
  const { format, resize, resolution, megapixels, round, upscale } = options.image;
  return { sink: typeof options.sink === 'string' ? options.sink : 'custom', format, resize, resolution, megapixels, round, upscale, samplesPerShard: options.samplesPerShard };
}

/** What opening the rows needs besides the input options. */
export function sourceSetup(options: Options): SourceSetup {
  // Kept columns go beside the layout's own fields: they cannot take those names.
  return {
    http: options.fetch,
    reservedColumns: options.layout === 'img2dataset' ? IMG2DATASET_RESERVED_COLUMNS : RESERVED_COLUMNS,
    localFiles: options.fetch.allowLocalFiles,
  };
}

async function runLocked(options: Options, source: RowSource, hooks: RunHooks): Promise<Summary> {
  const store = options.resume.enabled ? StateStore.open(options.output) : undefined;
  let outcome: RowsOutcome;
  let failure: { error: unknown } | undefined;
  try {
    const run = store?.startRun(runSettings(options)) ?? 0;
    const fetcher = createFetcher(options.fetch);
    const images = createImagePool(options.image);
    try {
      outcome = await runRows(options, source, { fetcher, images, ...(store ? { state: { store, run } } : {}) }, hooks);
    } finally {
      await Promise.all([fetcher.close().catch(() => {}), images.close().catch(() => {})]);
    }
    failure = outcome.failure;
    const exit = failure ? `error: ${errorMessage(failure.error)}` : outcome.summary?.interrupted ? 'stopped' : 'finished';
    store?.endRun(run, exit, outcome.summary ?? { rows: 0, saved: 0, failed: 0, skipped: 0 });
  } catch (error) {
    // The error that stopped the run (a full disk, say) is the one to report.
    failure ??= { error };
  } finally {
    store?.close();
  }
  if (failure) throw failure.error;
  const summary = outcome!.summary;
  if (!summary) throw new Error('internal error: no summary');
  if (options.report.summaryPath !== undefined) {
    await writeFileAtomically(options.report.summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  }
  return summary;
}

/** What a run over some rows is given besides its options: one machine's run, or one job of a queue worker. */
export interface RunContext {
  readonly fetcher: Fetcher;
  /** The image threads (image/pool.ts). */
  readonly images: ImagePool;
  /** The resume state and this run's number in it; absent with --no-resume. */
  readonly state?: { readonly store: ResumeState; readonly run: number };
  /** Set when many workers write this output (see queue/worker.ts). */
  readonly shared?: SharedOutput;
  /** Append to --results instead of starting it afresh (a worker runs one job after another). */
  readonly appendResults?: boolean;
}

export interface RowsOutcome {
  /** Absent only when the sink or reports could not be opened. */
  readonly summary: Summary | undefined;
  /** What stopped the rows, or a sink or report that failed to close. */
  readonly failure: { readonly error: unknown } | undefined;
}

/**
 * Runs the pipeline over `source`'s rows: opens the sink and reports, streams every row
 * through the stages, and closes them again, even after a failure (so files are flushed
 * and sockets released). The pipeline has settled before the close (every stage waits for
 * its work in flight), so no write reaches the sink after it. A sink or report that cannot
 * be closed means output was lost: that is a failure too.
 */
export async function runRows(options: Options, source: RowSource, context: RunContext, hooks: RunHooks = {}): Promise<RowsOutcome> {
  const progress = chooseProgress(options, hooks);
  const log = (message: string) => progress.log(message);
  const { fetcher, state } = context;
  // A worker says it once when it starts, not for every job.
  if (!context.shared) for (const note of connectionNotes(options.fetch)) log(note);

  // Shutdown: `stop` ends reading; `abandon` fires after the grace period and ends the
  // fetches still in flight.
  const abandon = new AbortController();
  // Every fetch in flight listens for it: more than the default 10 is expected.
  setMaxListeners(0, abandon.signal);
  let graceTimer: NodeJS.Timeout | undefined;
  const onStop = () => {
    log(`stopping: no new rows; rows in flight have ${options.graceMs / 1000} s to finish`);
    graceTimer = setTimeout(() => abandon.abort(), options.graceMs).unref();
  };
  hooks.stop?.addEventListener('abort', onStop, { once: true });
  const stopReleasingMemory = releaseFreedMemoryEvery();

  let sink: Awaited<ReturnType<typeof openSink>> | undefined;
  let recorder: Recorder | undefined;
  let failure: { error: unknown } | undefined;
  try {
    sink = await openSink(options.sink, {
      output: options.output,
      format: options.image.format,
      samplesPerShard: options.samplesPerShard,
      log,
      sizeRule: options.image,
      datasetRoot: options.dataloaderRoot ?? resolve(options.output),
      metadataEveryMs: options.metadataEveryMs,
      subfolders: options.subfolders,
      layout: options.layout,
      keptColumns: source.keptColumns,
      ...(context.shared ? { shared: context.shared } : {}),
    });
    // Rows in flight that rows with the same URL or bytes wait for (--dedupe): claimed in
    // the resume and content stages, released once the recorder has the outcome.
    const claims = new InFlightClaims();
    recorder = await Recorder.open({
      report: options.report,
      progress,
      hosts: fetcher.hosts,
      ...(state ? { state } : {}),
      ...(source.totalRows === undefined ? {} : { totalRows: source.totalRows }),
      ...(context.appendResults ? { appendResults: true } : {}),
      recorded: (outcome) => claims.release(outcome.row),
    });
    const planRequest = createRequestPlanner(options.fetch.cdnResizeHosts, options.image.resolution, options.image.round);
    const rows = sourceStage(source, hooks.stop, recorder.rowRead);
    const image = imageStage(context.images, options.image.concurrency);
    // --dedupe content decides once the bytes are hashed, with the decode (image/task.ts), before the sink.
    const dedupeContent = state && options.resume.dedupe.includes('content') ? contentDedupeStage(state.store, claims, options.image.concurrency) : undefined;
    await pipeline(
      state ? resumeStage(state.store, state.run, sink, options.resume, claims)(rows) : rows,
      metadataFilterStage(options.image),
      fetchStage(fetcher, planRequest, options.fetch.concurrency, abandon.signal),
      dedupeContent ? (items: AsyncIterable<Item>) => dedupeContent(image(items)) : image,
      sinkStage(sink, options.graceMs),
      recorder.consume,
    );
    // The rows read before a broken input have all been recorded by now.
    const readError = source.readError();
    if (readError) throw readError;
  } catch (error) {
    failure = { error };
  } finally {
    clearTimeout(graceTimer);
    hooks.stop?.removeEventListener('abort', onStop);
  }

  const [sinkClosed, recorderClosed] = await Promise.allSettled([sink?.close(), recorder?.close()]);
  stopReleasingMemory();
  if (sinkClosed.status === 'rejected') failure ??= { error: sinkClosed.reason };
  if (recorderClosed.status === 'rejected') failure ??= { error: recorderClosed.reason };
  const summary = recorder?.summary();
  if (summary && hooks.stop?.aborted) summary.interrupted = true;
  return { summary, failure };
}

function chooseProgress(options: Options, hooks: RunHooks): ProgressReporter {
  if (hooks.log) return { start() {}, log: hooks.log, stop() {} };
  if (options.report.quiet) return silentProgress;
  if (options.report.progressBar) return barProgress(process.stderr);
  return logProgress((line) => void process.stderr.write(`${line}\n`), options.report.logEveryMs);
}

export { formatSummary };
export type { Summary };
