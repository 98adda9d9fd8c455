/**
 * The run command (`photo-concept-pipeline --input ... --output ...`): flags to options,
 * the pipeline, the summary line, the exit code. Only a run loads the image, HTTP and
 * Parquet libraries: `--help`, `--version` and `status` stay quick, and work where a
 * native module (sharp's) cannot load.
 */
import { CommanderError } from 'commander';
import { errorMessage } from '../errors.js';
import { resolveOptions, type Options, type PipelineOptions } from '../options.js';
import { parseCommand, type Draft } from './command.js';
import { EXIT_FATAL, EXIT_USAGE, exitCodeOf } from './exit.js';
import { poolWarning } from './process-settings.js';
import { stopOnSignals } from './signals.js';


/**
 * The options a run's command line gives (before defaults): what tests and the bench use
 * to run the pipeline with exactly the flags a user would type.
 */
export function pipelineOptionsFrom(argv: readonly string[], stdin: NodeJS.ReadableStream = process.stdin): PipelineOptions {
  // A live bar on a terminal unless --no-progress; rows on stdin unless --input.
  const base: Draft = { report: { progressBar: process.stderr.isTTY === true } };
  const { flags, options } = parseCommand('run', argv, base);
  if (flags.input === undefined) options.input = { ...(options.input as Draft | undefined), stream: stdin };
  return options as unknown as PipelineOptions;
}

export async function runCommand(argv: readonly string[]): Promise<number> {
  let options: Options;
  try {
    options = resolveOptions(pipelineOptionsFrom(argv));
  } catch (error) {
    if (error instanceof CommanderError) return exitCodeOf(error); // commander printed it
    // Anything wrong with the flags or their values is the user's to fix.
    process.stderr.write(`error: ${errorMessage(error)}\n`);
    return EXIT_USAGE;
  }
  const run = await import('../run.js').catch((error: unknown) => {
    const reason = errorMessage(error).split('\n')[0];
    process.stderr.write(`error: a run needs sharp, undici and parquet-wasm, and one of them could not be loaded: ${reason} (--help, --version and status work without them)\n`);
    return undefined;
  });
  if (!run) return EXIT_FATAL;

  const poolTooSmall = poolWarning(options.image.concurrency);
  if (poolTooSmall && !options.report.quiet) process.stderr.write(`${poolTooSmall}\n`);
  const signals = stopOnSignals();
  try {
    const summary = await run.runPipeline(options, { stop: signals.signal });
    process.stderr.write(`${run.formatSummary(summary, options.output)}\n`);
    return signals.exitCode();
  } catch (error) {
    process.stderr.write(`error: ${errorMessage(error)}\n`);
    return exitCodeOf(error);
  } finally {
    signals.dispose();
    // stdin may still be open (a run stopped early): it must not hold the process.
    process.stdin.destroy();
  }
}
