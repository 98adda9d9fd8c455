/**
 * The resume state that queue workers share, in Redis: the same answers as the SQLite
 * store of one machine (state/store.ts), for every worker at once. SQLite on a network
 * filesystem is not safe; Redis is already there for the queue.
 *
 * One hash holds every sample: `S|{run}` when saved, `F|{reason}|{transient}|{failedRuns}|{run}`
 * when failed (about 40 bytes a sample: 25 MB for 567k). Each change is one Lua script,
 * atomic in Redis, which also keeps the counts `status` shows (saved, failed, failed by
 * reason) exact however many workers write at once.
 *
 * It is also the shard sinks' ledger: which samples completed shards hold, and how many
 * shards of each job are complete.
 */
import type { Redis } from 'ioredis';
import { isTransient, type FailureReason } from '../reasons.js';
import type { SharedShardLedger } from '../sinks/contract.js';
import type { DedupeKey } from '../state/options.js';
import type { ResumeState, SampleState, SavedSample } from '../state/store.js';
import type { QueueKeys } from './connection.js';

/**
 * KEYS: samples, counts, urls, contents. ARGV: id, run, url, sha256 of the fetched bytes
 * (each '' when not kept). The first id saved from a URL or with some bytes keeps it.
 */
const RECORD_SAVED = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], 'S|' .. ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[1]) end
if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[4], ARGV[4], ARGV[1]) end
if not old then
  redis.call('HINCRBY', KEYS[2], 'saved', 1)
elseif string.sub(old, 1, 1) == 'F' then
  local reason = string.match(old, '^F|([^|]*)|')
  redis.call('HINCRBY', KEYS[2], 'failed', -1)
  redis.call('HINCRBY', KEYS[2], 'failed:' .. reason, -1)
  redis.call('HINCRBY', KEYS[2], 'saved', 1)
end
return 1`;

/** KEYS: samples, counts. ARGV: id, reason, transient (0/1), run. A saved sample stays saved. */
const RECORD_FAILED = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
local runs = 1
if old then
  if string.sub(old, 1, 1) == 'S' then return 0 end
  local reason, _, failedRuns, lastRun = string.match(old, '^F|([^|]*)|(%d)|(%d+)|(%d+)$')
  runs = tonumber(failedRuns) + ((lastRun == ARGV[4]) and 0 or 1)
  redis.call('HINCRBY', KEYS[2], 'failed:' .. reason, -1)
else
  redis.call('HINCRBY', KEYS[2], 'failed', 1)
end
redis.call('HINCRBY', KEYS[2], 'failed:' .. ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[1], 'F|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. runs .. '|' .. ARGV[4])
return 1`;

/**
 * KEYS: stored, shards. ARGV: job, shard, ids... The shard must be the job's next one: two
 * attempts racing on one job (BullMQ gave away the job of a worker it thought dead) cannot
 * both record it.
 */
const COMPLETE_SHARD = `
local done = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if done ~= tonumber(ARGV[2]) then
  return redis.error_reply('shard ' .. ARGV[2] .. ' of ' .. ARGV[1] .. ' is not the next one (' .. done .. ' recorded): another worker holds this job')
end
for i = 3, #ARGV, 5000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 4999, #ARGV)))
end
redis.call('HSET', KEYS[2], ARGV[1], done + 1)
return done + 1`;

interface Scripts {
  pcpRecordSaved(samples: string, counts: string, urls: string, contents: string, id: string, run: number, url: string, sha256: string): Promise<number>;
  pcpRecordFailed(samples: string, counts: string, id: string, reason: string, transient: number, run: number): Promise<number>;
  pcpCompleteShard(stored: string, shards: string, job: string, shard: number, ...ids: string[]): Promise<number>;
}

/** What `status --redis` shows of the samples. */
export interface SharedCounts {
  readonly saved: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
}

export class RedisState implements ResumeState, SharedShardLedger {
  readonly #redis: Redis & Scripts;
  readonly #keys: QueueKeys;
  readonly #keepUrls: boolean;
  readonly #keepContents: boolean;

  /**
   * @param options.dedupe what to record of each saved sample for `--dedupe`: its URL
   * (about 100 bytes a sample more), the sha256 of its fetched bytes (about 140). Every
   * worker of a queue keeps the same (settings.ts), or one would miss what another saved.
   */
  constructor(redis: Redis, keys: QueueKeys, options: { dedupe?: readonly DedupeKey[] } = {}) {
    this.#keepUrls = options.dedupe?.includes('url') ?? false;
    this.#keepContents = options.dedupe?.includes('content') ?? false;
    redis.defineCommand('pcpRecordSaved', { numberOfKeys: 4, lua: RECORD_SAVED });
    redis.defineCommand('pcpRecordFailed', { numberOfKeys: 2, lua: RECORD_FAILED });
    redis.defineCommand('pcpCompleteShard', { numberOfKeys: 2, lua: COMPLETE_SHARD });
    this.#redis = redis as Redis & Scripts;
    this.#keys = keys;
  }

  /** A new run number: each attempt at a job is a run (a transient failure counts once per run). */
  async startRun(): Promise<number> {
    return this.#redis.incr(this.#keys.runs);
  }

  async get(id: string): Promise<SampleState | undefined> {
    const value = await this.#redis.hget(this.#keys.samples, id);
    return value === null ? undefined : parseState(value);
  }

  async recordSaved(id: string, run: number, sample: SavedSample): Promise<void> {
    const { samples, counts, urls, contents } = this.#keys;
    await this.#redis.pcpRecordSaved(samples, counts, urls, contents, id, run, this.#keepUrls ? sample.url : '', this.#keepContents ? sample.originalSha256 : '');
  }

  async savedUnder(url: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#keys.urls, url)) ?? undefined;
  }

  async savedWithContent(sha256: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#keys.contents, sha256)) ?? undefined;
  }

  async recordFailed(id: string, run: number, reason: FailureReason): Promise<void> {
    await this.#redis.pcpRecordFailed(this.#keys.samples, this.#keys.counts, id, reason, isTransient(reason) ? 1 : 0, run);
  }

  /** Which of these ids are recorded saved (finalize's check of the metadata parts). */
  async savedAmong(ids: readonly string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const values = await this.#redis.hmget(this.#keys.samples, ...ids);
    return values.map((value) => value !== null && value.startsWith('S|'));
  }

  async counts(): Promise<SharedCounts> {
    const raw = await this.#redis.hgetall(this.#keys.counts);
    const failures: Record<string, number> = {};
    for (const [key, value] of Object.entries(raw)) {
      if (key.startsWith('failed:') && Number(value) > 0) failures[key.slice('failed:'.length)] = Number(value);
    }
    return { saved: Number(raw.saved ?? 0), failed: Number(raw.failed ?? 0), failures };
  }

  async completed(job: string): Promise<number> {
    return Number((await this.#redis.hget(this.#keys.shards, job)) ?? 0);
  }

  async complete(job: string, shard: number, ids: readonly string[]): Promise<void> {
    await this.#redis.pcpCompleteShard(this.#keys.stored, this.#keys.shards, job, shard, ...ids);
  }

  async holds(id: string): Promise<boolean> {
    return (await this.#redis.sismember(this.#keys.stored, id)) === 1;
  }

  /** Samples held by completed shards. */
  async storedCount(): Promise<number> {
    return this.#redis.scard(this.#keys.stored);
  }

  /** Every job's completed shard count (finalize removes shards beyond it). */
  async completedShards(): Promise<Map<string, number>> {
    const raw = await this.#redis.hgetall(this.#keys.shards);
    return new Map(Object.entries(raw).map(([job, count]) => [job, Number(count)]));
  }
}

function parseState(value: string): SampleState {
  const parts = value.split('|');
  if (parts[0] === 'S') return { status: 'saved', reason: null, transient: false, failedRuns: 0, lastRun: Number(parts[1]) };
  return { status: 'failed', reason: parts[1] ?? null, transient: parts[2] === '1', failedRuns: Number(parts[3]), lastRun: Number(parts[4]) };
}
