/**
 * What the shard sinks (WebDataset tar, Parquet) share: samples go into the open shard,
 * written under a temporary name; after `samplesPerShard` samples (or at close, which a
 * stop signal also reaches) the shard is completed: a `{shard:05d}_stats.json` is
 * written, the shard renamed to `{shard:05d}.{ext}` beside it, and its samples committed in the
 * index. A shard cut short by a kill is never renamed: its temporary file is swept at the
 * next start and its samples are fetched again, so no sample appears in two shards.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';
import { exists } from '../util/exists.js';
import type { Sample, SharedOutput, Sink, SinkContext } from './contract.js';
import { describeSample } from './metadata.js';
import { SampleIndex, type IndexedSample } from './sample-index.js';

export interface ShardWriter {
  /** Adds a sample; resolves when the writer has taken it (backpressure). Returns bytes written. */
  append(sample: Sample, describe: ReturnType<typeof describeSample>): Promise<number>;
  /** Completes the file and renames it to its real name. */
  finish(): Promise<void>;
  /** Gives up: the temporary file is removed. */
  abort(): Promise<void>;
}

export interface ShardFormat {
  readonly name: string;
  readonly extension: string;
  open(path: string): ShardWriter;
}

/**
 * Which samples the sink's completed shards hold, and what shard comes next: the sink's
 * own SQLite index on one machine, the shared ledger (Redis) when queue workers share the
 * output.
 */
interface ShardBook {
  /** The file name of a shard, without its extension. */
  name(shard: number): string;
  readonly firstShard: number;
  has(id: string): Promise<boolean>;
  /** A sample went into the open shard. */
  add(sample: IndexedSample): void;
  /** The open shard was abandoned: its samples are fetched again. */
  dropPending(): void;
  /** The shard's file is complete and in place: its samples are stored. */
  complete(shard: number): Promise<void>;
  close(): void;
}

export async function createShardedSink(context: SinkContext, format: ShardFormat): Promise<Sink> {
  const { output, samplesPerShard } = context;
  const book = context.shared ? await sharedBook(context.shared, output, format) : await localBook(context, format);
  const fileOf = (shard: number) => join(output, `${book.name(shard)}.${format.extension}`);
  const statsOf = (shard: number) => join(output, `${book.name(shard)}_stats.json`);
  let nextShard = book.firstShard;
  let open: { shard: number; writer: ShardWriter; samples: number; bytes: number; first: string; last: string } | undefined;

  /** Gives the open shard up after a failure: its file goes, its samples are fetched again next run. */
  const abandon = async () => {
    if (!open) return;
    const { writer } = open;
    open = undefined;
    await writer.abort();
    try {
      book.dropPending();
    } catch {
      // The index cannot be written either (a full disk): the next open drops them.
    }
  };

  /**
   * Completes the open shard: its stats first, then the shard renamed into place, then
   * its samples committed. A kill between the rename and the commit leaves a complete
   * shard whose samples are pending: the next open commits them (one machine) or the
   * next attempt at the job writes the shard again under the same name (workers).
   */
  const finish = async () => {
    if (!open) return;
    const { shard, writer, samples, bytes, first, last } = open;
    const stats = { shard: `${book.name(shard)}.${format.extension}`, samples, bytes, first_key: first, last_key: last, completed_at: new Date().toISOString() };
    try {
      await writeFilesAtomically(output, [[`${book.name(shard)}_stats.json`, `${JSON.stringify(stats, null, 2)}\n`]]);
      await writer.finish();
    } catch (error) {
      await rm(statsOf(shard), { force: true });
      await abandon();
      throw error;
    }
    open = undefined;
    await book.complete(shard);
  };

  return {
    concurrency: 1, // one shard file, written in order
    has: (id) => book.has(id),
    async write(sample) {
      if (!open) {
        const shard = nextShard++;
        open = { shard, writer: format.open(fileOf(shard)), samples: 0, bytes: 0, first: sample.id, last: sample.id };
      }
      const described = describeSample(sample, open.shard, context.keptColumns);
      let bytes: number;
      try {
        bytes = await open.writer.append(sample, described);
        book.add(described);
      } catch (error) {
        // A refusal is about this sample, before any byte of it was written; anything
        // else (a full disk) leaves the shard unusable.
        if ((error as { transient?: unknown })?.transient !== false) await abandon();
        throw error;
      }
      open.samples++;
      open.bytes += bytes;
      open.last = sample.id;
      if (open.samples >= samplesPerShard) await finish();
      return { bytesWritten: bytes };
    },
    async close() {
      try {
        await finish();
      } finally {
        book.close();
      }
    },
  };
}

/** One machine: the sink's SQLite index, shards numbered 00000, 00001, ... across runs. */
async function localBook(context: SinkContext, format: ShardFormat): Promise<ShardBook> {
  const { output, log } = context;
  const removed = await removeStaleTemporaryFiles(output);
  if (removed > 0) log(`removed ${removed} unfinished shard file(s) left by an earlier run`);
  const index = new SampleIndex(output, format.name);
  const fileOf = (shard: number) => join(output, `${shardName(shard)}.${format.extension}`);
  try {
    await settleEarlierShards(index, output, fileOf, (shard) => join(output, `${shardName(shard)}_stats.json`));
    const firstShard = Math.max(index.lastShard(), await lastShardOnDisk(output, format.extension)) + 1;
    return {
      name: shardName,
      firstShard,
      has: async (id) => index.has(id),
      add: (sample) => index.put(sample, false),
      dropPending: () => index.dropPending(),
      complete: async (shard) => index.commitShard(shard),
      close: () => index.close(),
    };
  } catch (error) {
    index.close();
    throw error;
  }
}

/**
 * Queue workers: shards are named after the job (`rows-000000001-000000050-00.tar`), so
 * names never collide between workers, and numbered within it from the shared ledger, so
 * an attempt that takes over a dead worker's job starts at the first shard not recorded
 * complete. A shard that the dead worker renamed into place but never recorded is written
 * again under its own name (replacing it); any it left beyond that are removed now.
 */
async function sharedBook(shared: SharedOutput, output: string, format: ShardFormat): Promise<ShardBook> {
  const name = (shard: number) => `${shared.job}-${String(shard).padStart(2, '0')}`;
  const firstShard = await shared.shards.completed(shared.job);
  const pattern = new RegExp(`^${escapeRegExp(shared.job)}-(\\d{2,})(?:\\.${escapeRegExp(format.extension)}|_stats\\.json)$`);
  for (const file of await readdir(output)) {
    const match = pattern.exec(file);
    if (match && Number(match[1]) >= firstShard) await rm(join(output, file), { force: true });
  }
  let pending: string[] = [];
  return {
    name,
    firstShard,
    has: (id) => shared.shards.holds(id),
    add: (sample) => void pending.push(sample.id),
    dropPending: () => void (pending = []),
    async complete(shard) {
      const ids = pending;
      pending = [];
      await shared.shards.complete(shared.job, shard, ids);
    },
    close: () => {},
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * What a killed or failed run left: a shard renamed into place whose samples were not yet
 * committed is complete, so they are committed now; other pending samples are dropped
 * (their shard never completed, so they are fetched again); a stats file without its
 * shard is removed.
 */
async function settleEarlierShards(
  index: SampleIndex,
  output: string,
  fileOf: (shard: number) => string,
  statsOf: (shard: number) => string,
): Promise<void> {
  for (const shard of index.pendingShards()) {
    if (await exists(fileOf(shard))) index.commitShard(shard);
  }
  index.dropPending();
  for (const name of await readdir(output)) {
    const match = /^(\d{5,})_stats\.json$/.exec(name);
    if (match && !(await exists(fileOf(Number(match[1]))))) await rm(statsOf(Number(match[1])), { force: true });
  }
}

function shardName(shard: number): string {
  return String(shard).padStart(5, '0');
}

async function lastShardOnDisk(output: string, extension: string): Promise<number> {
  let last = -1;
  for (const name of await readdir(output)) {
    const match = new RegExp(`^(\\d{5,})\\.${extension}$`).exec(name);
    if (match) last = Math.max(last, Number(match[1]));
  }
  return last;
}
