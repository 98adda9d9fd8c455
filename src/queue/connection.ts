/**
 * Redis connections for the queue commands. Every connection retries forever with a
 * growing delay and keeps commands queued meanwhile (BullMQ needs
 * `maxRetriesPerRequest: null`), so Redis going away for a while pauses the work instead
 * of failing it. Only the first contact has a deadline: a wrong URL is a usage error.
 */
import { Redis } from 'ioredis';
import { UsageError, errorMessage } from '../errors.js';

/** How long the first contact may take before the command gives up. */
const FIRST_CONTACT_MS = 10_000;

export async function connectRedis(url: string, role: string): Promise<Redis> {
  if (!/^rediss?:\/\//i.test(url)) throw new UsageError(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  const client = new Redis(url, {
    connectionName: `photo-concept-pipeline:${role}`,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * 2 ** times, 5_000),
    lazyConnect: true,
  });
  // Reconnects are expected; they are logged by whoever watches the connection.
  client.on('error', () => {});
  try {
    await withDeadline(client.connect(), FIRST_CONTACT_MS);
    await withDeadline(client.ping(), FIRST_CONTACT_MS);
  } catch (error) {
    client.disconnect();
    throw new UsageError(`cannot reach Redis at ${redactedUrl(url)}: ${errorMessage(error)}`);
  }
  return client;
}

/** The URL without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return url;
  }
}

/** Every key this tool keeps for a queue (BullMQ keeps its own under `bull:{queue}:`). */
export function keysOf(queue: string) {
  const prefix = `pcp:${queue}:`;
  return {
    /** Hash: sample id -> its state (see redis-state.ts). */
    samples: `${prefix}samples`,
    /** Hash: saved, failed, and failed:{reason} counts of samples. */
    counts: `${prefix}counts`,
    /** Hash: sample id -> what the report shows of its outcome (JSON; see redis-state.ts). */
    outcomes: `${prefix}outcomes`,
    /** Hash: id -> the duplicate it was skipped as (JSON). */
    skips: `${prefix}skips`,
    /** Hash: host -> its "slow down" answers (429, 503). */
    slowDowns: `${prefix}slow-downs`,
    /** Hash: URL -> the id it was saved under (only with --dedupe url). */
    urls: `${prefix}urls`,
    /** Hash: sha256 of fetched bytes -> the id they were saved under (only with --dedupe content). */
    contents: `${prefix}contents`,
    /** Counter: runs (job attempts) so far. */
    runs: `${prefix}runs`,
    /** Set: ids held by completed shards (WebDataset, Parquet sinks). */
    stored: `${prefix}stored`,
    /** Hash: job -> shards completed. */
    shards: `${prefix}shards`,
    /** Hash: worker id -> its last heartbeat (JSON). */
    workers: `${prefix}workers`,
    /** String: the output settings the first worker used (JSON); later workers must match. */
    settings: `${prefix}settings`,
    /** Per-host politeness shared by the workers. */
    host: (host: string) => `${prefix}host:${host}`,
  };
}

export type QueueKeys = ReturnType<typeof keysOf>;

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
