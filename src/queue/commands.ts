/**
 * The queue's commands: `enqueue`, `worker`, `finalize` and `status --redis`. Each parses
 * its flags (commander), runs, prints one summary line or a status, and returns an exit
 * code with the single-machine command's meanings: 0 done, 1 a fatal error mid-run, 2 a
 * usage or input error, 75 not now (finalize before the queue drained), 130 and 143 after
 * SIGINT and SIGTERM.
 */
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_OK, buildCommand, columnsFrom, exitCodeOf, stopOnSignals, toPipelineOptions, withColumnOptions, type Flags } from '../cli.js';
import { integer, seconds } from '../cli-values.js';
import { UsageError, errorMessage } from '../errors.js';
import { absolutePath, inferInputFormat, resolveOptions, type InputFormat } from '../options.js';
import { writeFileAtomically } from '../util/atomic-file.js';

/** Runs a command's work, turning its errors into one line and an exit code. */
async function guarded(work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof CommanderError)) process.stderr.write(`error: ${errorMessage(error)}\n`);
    return exitCodeOf(error);
  }
}

function queueOptions(command: Command): Command {
  return command
    .requiredOption('--redis <url>', 'the Redis server the queue lives in, e.g. redis://queue-host:6379')
    .requiredOption('--queue <name>', 'the queue name (one queue per input and output)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
}

export async function enqueueCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const command = queueOptions(withColumnOptions(new Command().name('photo-concept-pipeline enqueue')))
      .description('Split an input into jobs of rows and add them to a queue for `worker`s. Adding the same input again adds nothing.')
      .requiredOption('-i, --input <file|url>', 'rows to split: .parquet, .csv or NDJSON, a path every worker can read or an http(s) URL')
      .addOption(new Option('--input-format <format>', 'input format (default: from the file name, else ndjson)').choices(['ndjson', 'csv', 'parquet']))
      .option('--rows-per-job <n>', 'rows per job: a killed worker costs at most one job of rework (default: 1000)', integer)
      .option('--timeout <seconds>', 'deadline for each request when the input is a URL (default: 60)', seconds);
    command.parse([...argv], { from: 'user' });
    const flags = command.opts<{
      redis: string; queue: string; input: string; inputFormat?: InputFormat; rowsPerJob?: number; timeout?: number;
      idColumn: string; urlColumn: string; captionColumn: string; fallbackCaptionColumn: string; widthColumn: string; heightColumn: string; verifyHashColumn?: string;
    }>();
    const rowsPerJob = flags.rowsPerJob ?? 1000;
    if (rowsPerJob < 1) throw new UsageError('--rows-per-job must be at least 1');
    const format = flags.inputFormat ?? inferInputFormat(flags.input);
    const columns = columnsFrom(flags);
    const { fetch } = resolveOptions({ output: '.', fetch: flags.timeout === undefined ? {} : { timeoutMs: flags.timeout } });
    const { enqueue } = await import('./enqueue.js');
    const outcome = await enqueue({ redisUrl: flags.redis, queue: flags.queue, input: flags.input, format, columns, rowsPerJob, http: fetch });
    process.stdout.write(`${outcome.jobs} jobs (${outcome.added} new) of ${outcome.rows} rows in queue ${flags.queue}\n`);
    return EXIT_OK;
  });
}

/** Run flags a worker does not take: its rows, and their columns, come from the jobs. */
const ENQUEUE_ONLY = ['--input', '--rows', '--input-format', '--no-resume', '--id-column', '--url-column', '--caption-column', '--fallback-caption-column', '--width-column', '--height-column', '--verify-hash-column'];

interface WorkerFlags extends Flags {
  redis: string;
  queue: string;
  jobLock?: number;
  maxJobs?: number;
  exitWhenDrained?: boolean;
}

export async function workerCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const command = queueOptions(buildCommand().name('photo-concept-pipeline worker'))
      .usage('--redis URL --queue NAME --output DIR [options]')
      .description('Take jobs from a queue and run the pipeline over their rows, into an output folder other workers may share.\nTakes every run flag except the input ones (rows come from the jobs).')
      .option('--job-lock <seconds>', "how long a job stays with a worker that stopped answering (killed, cut off) before another takes it (default: 30)", seconds)
      .option('--max-jobs <n>', 'leave after this many jobs (default: no limit)', integer)
      .option('--exit-when-drained', 'leave when no job is left waiting or running (default: wait for more)');
    // The input and its columns are the queue's, given to enqueue.
    for (const option of command.options) if (ENQUEUE_ONLY.includes(option.long ?? '')) option.hideHelp();
    command.parse([...argv], { from: 'user' });
    const flags = command.opts<WorkerFlags>();
    const given = command.options.find((option) => ENQUEUE_ONLY.includes(option.long ?? '') && command.getOptionValueSource(option.attributeName()) === 'cli');
    if (given?.long === '--no-resume') throw new UsageError('a worker always keeps the shared resume state: it is what makes a taken-over job skip stored samples');
    if (given) throw new UsageError(`a worker reads its rows from the queue's jobs: ${given.long} belongs to enqueue`);
    const options = resolveOptions(toPipelineOptions({ ...flags, input: undefined }, process.stdin));
    const { runWorker } = await import('./worker.js');
    const signals = stopOnSignals((name) => {
      process.stderr.write(`${name}: finishing or handing back the job in hand (rows in flight have ${options.graceMs / 1000} s)\n`);
    });
    try {
      const outcome = await runWorker({
        redisUrl: flags.redis,
        queue: flags.queue,
        options,
        jobLockMs: flags.jobLock ?? 30_000,
        ...(flags.maxJobs === undefined ? {} : { maxJobs: flags.maxJobs }),
        exitWhenDrained: flags.exitWhenDrained === true,
        stop: signals.signal,
        log: (line) => void process.stderr.write(`${line}\n`),
      });
      const { totals } = outcome;
      process.stderr.write(`worker done: ${outcome.jobs} jobs, ${totals.rows} rows, ${totals.saved} saved, ${totals.failed} failed, ${totals.skipped} skipped\n`);
      const summaryPath = options.report.summaryPath;
      if (summaryPath !== undefined) {
        const summary = { jobs: outcome.jobs, ...totals, interrupted: signals.received() !== undefined };
        await writeFileAtomically(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
      }
      if (outcome.fatal !== undefined) throw outcome.fatal;
      return signals.exitCode();
    } finally {
      signals.dispose();
      process.stdin.destroy();
    }
  });
}

export async function finalizeCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const command = queueOptions(new Command().name('photo-concept-pipeline finalize'))
      .description("When the queue has drained: write the shared output's dataset-wide files (dir: metadata.parquet and the SimpleTuner config) and remove what killed workers left.")
      .requiredOption('-o, --output <dir>', 'the output folder the workers wrote')
      .option('--dataloader-root <path>', 'absolute path the output folder will have where SimpleTuner reads it (default: the output folder)')
      .option('--force', 'go on while jobs are still waiting or running (their samples are left out)');
    command.parse([...argv], { from: 'user' });
    const flags = command.opts<{ redis: string; queue: string; output: string; dataloaderRoot?: string; force?: boolean }>();
    const { finalize } = await import('./finalize.js');
    const outcome = await finalize({
      redisUrl: flags.redis,
      queue: flags.queue,
      output: flags.output,
      datasetRoot: flags.dataloaderRoot === undefined ? resolve(flags.output) : absolutePath('--dataloader-root', flags.dataloaderRoot),
      force: flags.force === true,
      log: (line) => void process.stderr.write(`${line}\n`),
    });
    const removed = outcome.removedFiles > 0 ? `; removed ${outcome.removedFiles} file(s) killed workers left` : '';
    process.stdout.write(`finalized ${flags.output} (${outcome.sink}): ${outcome.samples} samples${removed}\n`);
    return EXIT_OK;
  });
}

export async function queueStatusCommand(flags: { redis: string; queue?: string; json?: boolean }): Promise<number> {
  return guarded(async () => {
    if (!flags.queue) throw new UsageError('status --redis needs --queue NAME');
    const { queueStatus, formatQueueStatus } = await import('./status.js');
    const status = await queueStatus(flags.redis, flags.queue);
    process.stdout.write(`${flags.json ? JSON.stringify(status, null, 2) : formatQueueStatus(status)}\n`);
    return EXIT_OK;
  });
}
