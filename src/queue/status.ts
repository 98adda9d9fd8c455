/**
 * `status --redis URL --queue NAME`: the queue's jobs by state, the samples saved and
 * failed (by reason) in the shared state, and the workers seen in the last 30 s with
 * their rows/s (each worker's rows over its last minute of finished jobs).
 */
import { Queue } from 'bullmq';
import { connectRedis, keysOf } from './connection.js';
import { RedisState, type SharedCounts } from './redis-state.js';

export interface QueueStatus {
  readonly queue: string;
  readonly jobs: { waiting: number; active: number; delayed: number; completed: number; failed: number };
  readonly samples: SharedCounts;
  readonly rowsPerSecond: number;
  readonly workers: ReadonlyArray<{ id: string; host: string; pid: number; job: string | null; jobs: number; rows: number; rowsPerSecond: number; secondsAgo: number }>;
  /** No job waiting, delayed or running: `finalize` can run. */
  readonly drained: boolean;
}

/** A worker is listed if it said it was alive this recently. */
const RECENT_MS = 30_000;

export async function queueStatus(redisUrl: string, name: string): Promise<QueueStatus> {
  const redis = await connectRedis(redisUrl, 'status');
  const queue = new Queue(name, { connection: redis });
  try {
    const keys = keysOf(name);
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    const samples = await new RedisState(redis, keys).counts();
    const now = Date.now();
    const workers = Object.entries(await redis.hgetall(keys.workers))
      .map(([id, text]) => ({ id, ...(JSON.parse(text) as { host: string; pid: number; job: string | null; jobs: number; rows: number; rowsPerSecond: number; seenAt: number }) }))
      .filter(({ seenAt }) => now - seenAt <= RECENT_MS)
      .map(({ id, host, pid, job, jobs, rows, rowsPerSecond, seenAt }) => ({ id, host, pid, job, jobs, rows, rowsPerSecond, secondsAgo: Math.round((now - seenAt) / 1000) }));
    const jobs = {
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
    };
    return {
      queue: name,
      jobs,
      samples,
      rowsPerSecond: Math.round(workers.reduce((sum, worker) => sum + worker.rowsPerSecond, 0) * 100) / 100,
      workers,
      drained: jobs.waiting + jobs.active + jobs.delayed === 0,
    };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

export function formatQueueStatus(status: QueueStatus): string {
  const { jobs, samples } = status;
  return [
    `queue: ${status.queue}`,
    `jobs: ${jobs.waiting} waiting, ${jobs.active} active, ${jobs.delayed} delayed, ${jobs.completed} completed, ${jobs.failed} failed`,
    `saved: ${samples.saved}`,
    `failed: ${samples.failed}`,
    ...Object.entries(samples.failures)
      .sort(([, a], [, b]) => b - a)
      .map(([reason, count]) => `  ${reason}: ${count}`),
    `rows/s: ${status.rowsPerSecond} (workers' last minute)`,
    `workers seen in the last ${RECENT_MS / 1000} s: ${status.workers.length}`,
    ...status.workers.map((w) => `  ${w.id}: ${w.job ? `on ${w.job}` : 'idle'}, ${w.jobs} jobs, ${w.rows} rows, ${w.rowsPerSecond} rows/s, seen ${w.secondsAgo} s ago`),
    status.drained ? 'drained: yes (run finalize to write the dataset-wide files)' : 'drained: no',
    `a page of it all: report --redis URL --queue ${status.queue} --output DIR`,
  ].join('\n');
}
