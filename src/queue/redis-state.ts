/**
 * The resume state that queue workers share, in Redis: the same answers as the SQLite
 * store of one machine (state/store.ts), for every worker at once. SQLite on a network
 * filesystem is not safe; Redis is already there for the queue.
 *
 * One hash holds every sample: `S|{run}` when saved, `F|{reason}|{transient}|{failedRuns}|{run}`
 * when failed (about 40 bytes a sample: 25 MB for 567k). Each change is one Lua script,
 * atomic in Redis, which also keeps the counts `status` shows (saved, failed, failed by
 * reason) exact however many workers write at once. The same script writes what the report
 * shows of the outcome to a second hash (`outcomes`: when, the host or URL, sizes, bytes,
 * the failure's detail; about 100 bytes a sample, 60 MB for 567k), kept apart so that
 * resume reads only the small one.
 *
 * It is also the shard sinks' ledger: which samples completed shards hold, and how many
 * shards of each job are complete.
 */
import type { Redis } from 'ioredis';
import { isTransient, type FailureReason } from '../reasons.js';
import type { SharedShardLedger } from '../sinks/contract.js';
import type { DedupeKey } from '../state/options.js';
import type { FailedRecord, ResumeState, SampleState, SavedRecord, SkippedRecord } from '../state/store.js';
import type { CaptionSource } from '../types.js';
import type { QueueKeys } from './connection.js';

/**
 * KEYS: samples, counts, urls, contents, outcomes. ARGV: id, run, url, sha256 of the fetched
 * bytes (each '' when not kept), outcome. The first id saved from a URL or with some bytes keeps it.
 */
const RECORD_SAVED = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], 'S|' .. ARGV[2])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[5])
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

/** KEYS: samples, counts, outcomes. ARGV: id, reason, transient (0/1), run, outcome. A saved sample stays saved. */
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
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
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
  pcpRecordSaved(samples: string, counts: string, urls: string, contents: string, outcomes: string, id: string, run: number, url: string, sha256: string, outcome: string): Promise<number>;
  pcpRecordFailed(samples: string, counts: string, outcomes: string, id: string, reason: string, transient: number, run: number, outcome: string): Promise<number>;
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
    redis.defineCommand('pcpRecordSaved', { numberOfKeys: 5, lua: RECORD_SAVED });
    redis.defineCommand('pcpRecordFailed', { numberOfKeys: 3, lua: RECORD_FAILED });
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

  async recordSaved(id: string, run: number, saved: SavedRecord): Promise<void> {
    const { samples, counts, urls, contents, outcomes } = this.#keys;
    const url = this.#keepUrls ? saved.url : '';
    const sha256 = this.#keepContents ? saved.originalSha256 : '';
    await this.#redis.pcpRecordSaved(samples, counts, urls, contents, outcomes, id, run, url, sha256, JSON.stringify(savedOutcome(saved)));
  }

  async savedUnder(url: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#keys.urls, url)) ?? undefined;
  }

  async recordFailed(id: string, run: number, failure: FailedRecord): Promise<void> {
    const { reason } = failure;
    const { samples, counts, outcomes } = this.#keys;
    await this.#redis.pcpRecordFailed(samples, counts, outcomes, id, reason, isTransient(reason) ? 1 : 0, run, JSON.stringify(failedOutcome(failure)));
  }

  async savedWithContent(sha256: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#keys.contents, sha256)) ?? undefined;
  }

  async recordSkipped(id: string, run: number, skip: SkippedRecord): Promise<void> {
    await this.#redis.hset(this.#keys.skips, id, JSON.stringify({ t: Date.now(), r: skip.reason, u: skip.url, run }));
  }

  async addSlowDowns(counts: ReadonlyMap<string, number>): Promise<void> {
    if (counts.size === 0) return;
    const batch = this.#redis.pipeline();
    for (const [host, count] of counts) batch.hincrby(this.#keys.slowDowns, host, count);
    await batch.exec();
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

/**
 * What the report shows of an outcome, in short keys (567k of them): `t` when (ms), `s` the
 * status, `h` the host (saved) or `u` the URL (failed: the report gives examples), sizes,
 * bytes, the caption's source and length, the failure's detail.
 */
export interface StoredOutcome {
  readonly t: number;
  readonly s: 'saved' | 'failed';
  readonly h?: string;
  readonly u?: string;
  readonly w?: number;
  readonly ht?: number;
  readonly ow?: number;
  readonly oh?: number;
  readonly b?: number;
  readonly f: number;
  readonly cs?: CaptionSource;
  readonly cw?: number;
  readonly r?: string;
  readonly d?: string;
}

function savedOutcome(saved: SavedRecord): StoredOutcome {
  return {
    t: Date.now(), s: 'saved', h: hostOf(saved.url), w: saved.width, ht: saved.height, ow: saved.originalWidth, oh: saved.originalHeight,
    b: saved.bytes, f: saved.bytesFetched, cs: saved.captionSource, cw: saved.captionWords,
  };
}

function failedOutcome(failure: FailedRecord): StoredOutcome {
  return { t: Date.now(), s: 'failed', ...(failure.url === undefined ? {} : { u: failure.url }), f: failure.bytesFetched, r: failure.reason, d: failure.detail };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

function parseState(value: string): SampleState {
  const parts = value.split('|');
  if (parts[0] === 'S') return { status: 'saved', reason: null, transient: false, failedRuns: 0, lastRun: Number(parts[1]) };
  return { status: 'failed', reason: parts[1] ?? null, transient: parts[2] === '1', failedRuns: Number(parts[3]), lastRun: Number(parts[4]) };
}
