/**
 * `enqueue`: splits an input into jobs (jobs.ts) and adds them to a BullMQ queue. Job ids
 * are the row ranges, so adding the same input again adds nothing: BullMQ ignores a job
 * whose id it already holds (completed jobs are kept for this). A queue holds one input,
 * split one way; another input or another --rows-per-job is refused, since its ranges
 * would overlap the first one's.
 */
import { Queue } from 'bullmq';
import { UsageError } from '../errors.js';
import type { ColumnNames, InputFormat } from '../sources/options.js';
import type { HttpInputOptions } from '../sources/http-input.js';
import { connectRedis, keysOf } from './connection.js';
import { jobName, planJobs, type JobData } from './jobs.js';

export interface EnqueueSetup {
  readonly redisUrl: string;
  readonly queue: string;
  readonly input: string;
  readonly format: InputFormat;
  readonly columns: ColumnNames;
  readonly rowsPerJob: number;
  readonly http: HttpInputOptions;
}

export interface EnqueueOutcome {
  readonly jobs: number;
  readonly added: number;
  readonly rows: number;
}

/** Jobs added to Redis per round trip. */
const BATCH = 500;
/** A job is tried this many times when its pipeline fails (a worker dying does not count). */
export const JOB_ATTEMPTS = 3;

export async function enqueue(setup: EnqueueSetup): Promise<EnqueueOutcome> {
  const redis = await connectRedis(setup.redisUrl, 'enqueue');
  const queue = new Queue<JobData>(setup.queue, { connection: redis });
  try {
    const keys = keysOf(setup.queue);
    const source = JSON.stringify({ input: setup.input, format: setup.format, columns: setup.columns, rowsPerJob: setup.rowsPerJob });
    await redis.set(`${keys.settings}:input`, source, 'NX');
    const recorded = await redis.get(`${keys.settings}:input`);
    if (recorded !== source) {
      throw new UsageError(`queue ${setup.queue} already holds the jobs of ${recorded}: use another --queue for another input or --rows-per-job`);
    }
    const before = await totalJobs(queue);
    let jobs = 0;
    let rows = 0;
    let batch: JobData[] = [];
    const flush = async () => {
      await queue.addBulk(
        batch.map((data) => ({
          name: 'rows',
          data,
          opts: { jobId: jobName(data.rows), attempts: JOB_ATTEMPTS, backoff: { type: 'exponential', delay: 30_000 }, removeOnComplete: false, removeOnFail: false },
        })),
      );
      batch = [];
    };
    for await (const job of planJobs(setup.input, setup.format, setup.columns, setup.rowsPerJob, setup.http)) {
      batch.push(job);
      jobs++;
      rows += job.rows.last - job.rows.first + 1;
      if (batch.length >= BATCH) await flush();
    }
    if (batch.length > 0) await flush();
    return { jobs, added: (await totalJobs(queue)) - before, rows };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** Every job the queue holds, in any state: what enqueueing changed. */
async function totalJobs(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}
