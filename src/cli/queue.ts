/**
 * The queue's commands: `enqueue`, `worker`, `finalize` and `status --redis`. Each parses
 * its flags from the flag table, runs, prints one summary line or a status, and returns an
 * exit code with the single-machine command's meanings (cli/exit.ts). The queue's modules
 * (BullMQ, ioredis) are loaded only when one of them runs.
 */
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { resolveOptions } from '../options.js';
import { writeFileAtomically } from '../util/atomic-file.js';
import { absolutePath } from '../util/validate.js';
import { parseCommand, type Draft } from './command.js';
import { FLAGS } from './flags.js';
import { EXIT_OK, guarded } from './exit.js';
import { poolWarning } from './process-settings.js';
import { stopOnSignals } from './signals.js';

const log = (line: string) => void process.stderr.write(`${line}\n`);

export async function enqueueCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const { flags, options } = parseCommand('enqueue', argv);
    const inputs = flags.input ?? [];
    if (inputs.length !== 1) throw new UsageError(`enqueue splits one input, got ${inputs.length}: enqueue each into its own --queue`);
    const rowsPerJob = flags.rowsPerJob ?? FLAGS.rowsPerJob.fallback;
    if (rowsPerJob < 1) throw new UsageError('--rows-per-job must be at least 1');
    const { input, fetch } = resolveOptions({ ...(options as Draft), output: '.' });
    const { enqueue } = await import('../queue/enqueue.js');
    const queue = flags.queue!;
    // The input as resolved: an hf:// input is the Hub's resolve URL from here on.
    const outcome = await enqueue({ redisUrl: flags.redis!, queue, input: input.path ?? inputs[0]!, format: input.format, columns: input.columns, rowsPerJob, http: fetch });
    process.stdout.write(`${outcome.jobs} jobs (${outcome.added} new) of ${outcome.rows} rows in queue ${queue}\n`);
    return EXIT_OK;
  });
}

export async function workerCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const { flags, options: draft } = parseCommand('worker', argv);
    const options = resolveOptions({ ...(draft as Draft), output: flags.output!, report: { ...(draft.report as Draft | undefined), progressBar: false } });
    const poolTooSmall = poolWarning(options.image.concurrency);
    if (poolTooSmall && !options.report.quiet) log(poolTooSmall);
    const { runWorker } = await import('../queue/worker.js');
    const signals = stopOnSignals((name) => log(`${name}: finishing or handing back the job in hand (rows in flight have ${options.graceMs / 1000} s)`));
    try {
      const outcome = await runWorker({
        redisUrl: flags.redis!,
        queue: flags.queue!,
        options,
        jobLockMs: flags.jobLock ?? FLAGS.jobLock.fallback,
        ...(flags.maxJobs === undefined ? {} : { maxJobs: flags.maxJobs }),
        exitWhenDrained: flags.exitWhenDrained === true,
        stop: signals.signal,
        log,
      });
      const { totals } = outcome;
      log(`worker done: ${outcome.jobs} jobs, ${totals.rows} rows, ${totals.saved} saved, ${totals.failed} failed, ${totals.skipped} skipped`);
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
    const { flags } = parseCommand('finalize', argv);
    const output = flags.output!;
    const { finalize } = await import('../queue/finalize.js');
    const outcome = await finalize({
      redisUrl: flags.redis!,
      queue: flags.queue!,
      output,
      datasetRoot: flags.dataloaderRoot === undefined ? resolve(output) : absolutePath('--dataloader-root', flags.dataloaderRoot),
      force: flags.force === true,
      log,
    });
    const removed = outcome.removedFiles > 0 ? `; removed ${outcome.removedFiles} file(s) killed workers left` : '';
    process.stdout.write(`finalized ${output} (${outcome.sink}): ${outcome.samples} samples${removed}\n`);
    return EXIT_OK;
  });
}

/** `status --redis URL --queue NAME`. */
export async function queueStatusCommand(redis: string, queue: string | undefined, json: boolean): Promise<number> {
  return guarded(async () => {
    if (!queue) throw new UsageError('status --redis needs --queue NAME');
    const { queueStatus, formatQueueStatus } = await import('../queue/status.js');
    const status = await queueStatus(redis, queue);
    process.stdout.write(`${json ? JSON.stringify(status, null, 2) : formatQueueStatus(status)}\n`);
    return EXIT_OK;
  });
}
