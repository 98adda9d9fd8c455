#!/usr/bin/env node
/**
 * The pipeline: row source -> fetch -> decode/resize -> sink -> record, each stage a
 * bounded, backpressured async transform, composed with Node's `stream.pipeline` (which
 * also tears every stage down if one fails).
 *
 * `runPipeline` is the library entry point; run as a program (`node dist/pipeline.js`),
 * this file hands its arguments to the CLI.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { SinkError, errorMessage } from './errors.js';
import { createRequestPlanner } from './fetch/cdn-resize.js';
import { createFetcher } from './fetch/fetcher.js';
import { resolveOptions, type Options, type PipelineOptions } from './options.js';
import { openSink } from './sinks/load.js';
import { fetchStage } from './stages/fetch.js';
import { imageStage } from './stages/image.js';
import { Recorder, formatSummary, type Summary } from './stages/record.js';
import { sinkStage } from './stages/sink.js';
import { openRowSource } from './stages/source.js';
import { writeFilesAtomically } from './util/atomic-file.js';
import { basename, dirname } from 'node:path';

export interface RunHooks {
  /** Where progress and failure lines go; defaults to stderr (nothing with `quiet`). */
  readonly log?: (message: string) => void;
}

export async function runPipeline(given: PipelineOptions | Options, hooks: RunHooks = {}): Promise<Summary> {
  const options = resolveOptions(given);
  const log = hooks.log ?? (options.report.quiet ? () => {} : (message: string) => process.stderr.write(`${message}\n`));

  const source = await openRowSource(options.input);
  try {
    await mkdir(options.output, { recursive: true });
  } catch (error) {
    throw new SinkError(`cannot create output folder ${options.output}: ${errorMessage(error)}`);
  }
  const sink = await openSink(options.sink, { output: options.output, format: options.image.format, log });
  const fetcher = createFetcher(options.fetch);
  const planRequest = createRequestPlanner(options.fetch.cdnResizeHosts, options.image.resolution, options.image.round);
  const recorder = await Recorder.open(options.report, log);
  let failure: { error: unknown } | undefined;
  try {
    await pipeline(
      source.items,
      fetchStage(fetcher, planRequest, options.fetch.concurrency),
      imageStage(options.image),
      sinkStage(sink),
      recorder.consume,
    );
  } catch (error) {
    failure = { error };
  }
  // Close everything even after a failure, so files are flushed and sockets released.
  const closed = await Promise.allSettled([sink.close(), fetcher.close(), recorder.close()]);
  if (failure) throw failure.error;
  for (const result of closed) if (result.status === 'rejected') throw result.reason;

  const summary = recorder.summary();
  if (options.report.summaryPath !== undefined) {
    const path = options.report.summaryPath;
    await writeFilesAtomically(dirname(path), [[basename(path), `${JSON.stringify(summary, null, 2)}\n`]]);
  }
  return summary;
}

export { formatSummary };
export type { Summary };

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// No top-level await here: cli.js imports this module, and awaiting it while this
// module is still evaluating would deadlock.
if (isMainModule()) {
  void import('./cli.js').then(async ({ main }) => {
    process.exitCode = await main(process.argv.slice(2));
  });
}
