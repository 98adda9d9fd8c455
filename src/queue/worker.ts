/**
 * `worker`: takes jobs (ranges of input rows) from a BullMQ queue and runs the same
 * pipeline over each, writing into an output folder that other workers, on this machine
 * or others, share.
 *
 * - **Exactly once.** The resume state is in Redis (redis-state.ts), so whoever takes a
 *   job skips what any worker already stored. A worker killed mid-job loses its lock;
 *   BullMQ's stalled-job check hands the job to another worker (`--job-lock` sets how soon).
 *   File names come from the job, never from the worker (see SharedOutput).
 * - **Stopping.** SIGTERM or SIGINT stops reading; rows in flight get `--grace`; the job is
 *   then handed back to the queue (moved to wait, no attempt spent) unless it finished.
 * - **Failures.** A job whose pipeline fails (an error no row explains) fails in BullMQ,
 *   which tries it again (3 attempts). An output that cannot be written (a full disk) or an
 *   input this machine cannot read hands the job back and stops the worker: every later
 *   job would fail the same way here.
 * - **Redis away.** Commands wait while the connection comes back (connection.ts); BullMQ
 *   reconnects its own. A job whose lock expired meanwhile may be taken by another worker:
 *   the shared state keeps that from storing a sample twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Queue, Worker, WaitingError, type Job } from 'bullmq';
import { SinkError, UsageError, errorMessage } from '../errors.js';
import { connectionNotes } from '../fetch/dispatcher.js';
import { createFetcher } from '../fetch/fetcher.js';
import { createImagePool } from '../image/pool.js';
import type { Options } from '../options.js';
import { runRows, sourceSetup } from '../run.js';
import { openRowSource } from '../sources/open.js';
import type { Summary } from '../stages/record.js';
import { connectRedis, keysOf } from './connection.js';
import { UNFINISHED_STATES, jobInput, jobName, type JobData } from './jobs.js';
import { RedisState } from './redis-state.js';
import { agreeOnSettings, outputSettings } from './settings.js';
import { Holdings } from '../util/holdings.js';
import { createSharedHostLimits } from './shared-limits.js';

export interface WorkerSetup {
  readonly redisUrl: string;
  readonly queue: string;
  readonly options: Options;
  /** How long a job stays with a worker that stopped answering before another takes it, in ms. */
  readonly jobLockMs: number;
  /** Stop after this many jobs (0: never); for tests and cron-style runs. */
  readonly maxJobs?: number;
  /** Leave when the queue has no job waiting (instead of waiting for more). */
  readonly exitWhenDrained?: boolean;
  readonly stop: AbortSignal;
  readonly log: (line: string) => void;
}

export interface WorkerOutcome {
  readonly jobs: number;
  readonly totals: Pick<Summary, 'rows' | 'saved' | 'failed' | 'skipped'>;
  /** What stopped the worker, when something did (a full disk, an unreadable input). */
  readonly fatal?: unknown;
}

/** How often a worker says it is alive, for `status`. */
export const HEARTBEAT_MS = 5_000;
/** How often an idle worker started with --exit-when-drained looks for work left. */
const DRAIN_CHECK_MS = 1_000;

export async function runWorker(setup: WorkerSetup): Promise<WorkerOutcome> {
  const { options, queue, log } = setup;
  const redis = await connectRedis(setup.redisUrl, 'worker');
  const keys = keysOf(queue);
  const workerId = `${hostname()}:${process.pid}`;
  const totals = { rows: 0, saved: 0, failed: 0, skipped: 0 };
  let jobs = 0;
  let fatal: unknown;
  const finished: Array<{ at: number; rows: number }> = [];
  let current: string | undefined;

  const heartbeat = async () => {
    const now = Date.now();
    while (finished.length > 0 && finished[0]!.at < now - 60_000) finished.shift();
    const recentRows = finished.reduce((sum, { rows }) => sum + rows, 0);
    const beat = { host: hostname(), pid: process.pid, job: current ?? null, jobs, ...totals, rowsPerSecond: Math.round((recentRows / 60) * 100) / 100, seenAt: now };
    await redis.hset(keys.workers, workerId, JSON.stringify(beat));
  };

  // Everything the worker opens is released on every way out: success, a stop, an error.
  const held = new Holdings();
  held.hold(redis, (connection) => connection.disconnect());
  try {
    await agreeOnSettings(redis, keys, queue, outputSettings(options));
    try {
      await mkdir(options.output, { recursive: true });
    } catch (error) {
      throw new SinkError(`cannot create output folder ${options.output}: ${errorMessage(error)}`);
    }
    for (const note of connectionNotes(options.fetch)) log(note);
    const state = new RedisState(redis, keys, { dedupe: options.resume.dedupe });
    const limits = createSharedHostLimits(redis, keys, options.fetch);
    const fetcher = held.hold(createFetcher(options.fetch, limits), (each) => each.close());
    const images = held.hold(createImagePool(options.image), (pool) => pool.close());
    const stopAll = new AbortController();
    const onStop = () => stopAll.abort();
    setup.stop.addEventListener('abort', onStop, { once: true });
    held.hold(onStop, (listener) => setup.stop.removeEventListener('abort', listener));

    const processJob = async (job: Job<JobData>, token?: string): Promise<Pick<Summary, 'rows' | 'saved' | 'failed' | 'skipped'>> => {
      const name = jobName(job.data.rows);
      const handBack = async (why: string) => {
        log(`job ${name}: handed back to the queue (${why})`);
        await job.moveToWait(token);
        throw new WaitingError();
      };
      if (stopAll.signal.aborted) return handBack('stopping');
      current = name;
      await heartbeat().catch(() => {}); // status shows the job in hand at once
      const startedAt = Date.now();
      // The job says which rows; the worker's own flags how to read them (the same on every worker, see settings.ts).
      const { maxRowBytes, keep, sample, missingCaptions } = options.input;
      const jobOptions: Options = { ...options, input: { ...jobInput(job.data), maxRowBytes, missingCaptions, ...(keep ? { keep } : {}), ...(sample ? { sample } : {}) } };
      let source;
      try {
        source = await openRowSource(jobOptions.input, sourceSetup(options));
      } catch (error) {
        fatal = error instanceof UsageError ? error : new UsageError(errorMessage(error));
        stopAll.abort();
        return handBack(`cannot read its input here: ${errorMessage(error)}`);
      }
      let outcome;
      try {
        // finalize writes the kept columns with the types the input gave them.
        if (source.keptColumns.length > 0) await redis.set(`${keys.settings}:kept`, JSON.stringify(source.keptColumns), 'NX');
        const run = await state.startRun();
        const attempt = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
        outcome = await runRows(
          jobOptions,
          source,
          { fetcher, images, state: { store: state, run }, shared: { job: name, attempt, shards: state }, appendResults: true },
          { stop: stopAll.signal },
        );
      } finally {
        await source.close();
        current = undefined;
      }
      await heartbeat().catch(() => {});
      if (outcome.failure) {
        const error = outcome.failure.error;
        if (error instanceof SinkError || error instanceof UsageError) {
          fatal = error;
          stopAll.abort();
          return handBack(errorMessage(error));
        }
        throw error instanceof Error ? error : new Error(errorMessage(error));
      }
      const summary = outcome.summary!;
      if (summary.interrupted) return handBack(`stopped after ${summary.rows} of its rows; the rest are done by whoever takes it`);
      const counts = { rows: summary.rows, saved: summary.saved, failed: summary.failed, skipped: summary.skipped };
      for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += counts[key];
      jobs++;
      finished.push({ at: Date.now(), rows: summary.rows });
      log(`job ${name}: ${summary.rows} rows, ${summary.saved} saved, ${summary.failed} failed, ${summary.skipped} skipped in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
      if (setup.maxJobs && jobs >= setup.maxJobs) stopAll.abort();
      return counts;
    };

    // BullMQ leaves a connection it was given open: it is closed when the worker is.
    const queueConnection = held.hold(redis.duplicate(), (connection) => connection.disconnect());
    queueConnection.on('error', () => {});
    const worker = new Worker<JobData>(queue, processJob, {
      connection: queueConnection,
      concurrency: 1,
      autorun: false,
      lockDuration: setup.jobLockMs,
      stalledInterval: setup.jobLockMs,
      // A job is handed on each time its worker dies; only a job that kills every worker
      // that takes it (say, an image that crashes the decoder) should end up failed.
      maxStalledCount: 10,
      drainDelay: 1,
    });
    // Waits for the job in hand: it finishes, or hands itself back after --grace.
    held.hold(worker, (each) => each.close());
    let lastError = '';
    worker.on('error', (error) => {
      // Repeats while Redis is away: say it once per distinct error.
      const message = errorMessage(error);
      if (message !== lastError) log(`warning: queue connection: ${message} (retrying)`);
      lastError = message;
    });
    worker.on('ready', () => (lastError = ''));
    // Drained means no job left that anyone could still take: a dead worker's job counts
    // as active until the stalled-job check hands it back, and must not be left behind.
    if (setup.exitWhenDrained) {
      const queueView = held.hold(new Queue(queue, { connection: redis }), (view) => view.close());
      const watch = setInterval(() => {
        if (current !== undefined) return;
        void queueView.getJobCounts(...UNFINISHED_STATES).then((counts) => {
          if (Object.values(counts).every((count) => count === 0)) stopAll.abort();
        }, () => {});
      }, DRAIN_CHECK_MS).unref();
      held.hold(watch, clearInterval);
    }

    await heartbeat();
    held.hold(setInterval(() => void heartbeat().catch(() => {}), HEARTBEAT_MS).unref(), clearInterval);
    const running = worker.run();
    await new Promise<void>((resolve) => (stopAll.signal.aborted ? resolve() : stopAll.signal.addEventListener('abort', () => resolve(), { once: true })));
    await worker.close();
    await running;
    // Gone from `status` at once, not 30 s later.
    await redis.hdel(keys.workers, workerId).catch(() => {});
  } finally {
    await held.releaseAll();
  }
  return { jobs, totals, ...(fatal === undefined ? {} : { fatal }) };
}
