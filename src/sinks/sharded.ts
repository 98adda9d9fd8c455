/**
 * What the shard sinks (WebDataset tar, Parquet) share: samples go into the open shard,
 * written under a temporary name; after `samplesPerShard` samples (or at close, which a
 * stop signal also reaches) the shard is completed: a `{shard:05d}_stats.json` is
 * written, the shard renamed to `{shard:05d}.{ext}` beside it, and its samples committed in the
 * index. A shard cut short by a kill is never renamed: its temporary file is swept at the
 * next start and its samples are fetched again, so no sample appears in two shards.
 *
 * The layout (`--layout`) decides each sample's key in its shard and what the stats file
 * says: `native`, the id and our own stats; `img2dataset`, the shard and the position in
 * it, and img2dataset's stats (see img2dataset.ts). Either way resume goes by id: the
 * index records each id with its key, a rerun skips stored ids, and new samples go into
 * new shards, so their keys are new too.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';
import { exists } from '../util/exists.js';
import type { Sample, SharedOutput, Sink, SinkContext } from './contract.js';
import { sampleKey, shardStats, type ShardRecord } from './img2dataset.js';
import { describeSample } from './metadata.js';
import { SampleIndex, type IndexedSample } from './sample-index.js';

export interface ShardWriter {
  /** Adds a sample (its `key` is set); resolves when the writer has taken it (backpressure). Returns bytes written. */
  append(sample: Sample, described: IndexedSample): Promise<number>;
  /** Completes the files, the companions first, and renames them to their real names. */
  finish(): Promise<void>;
  /** Gives up: the temporary files, and companions already in place, are removed. */
  abort(): Promise<void>;
}

export interface ShardFormat {
  readonly name: string;
  /** The shard file's extension: that file in place marks the shard complete. */
  readonly extension: string;
  /**
   * Extensions of files written beside the shard under its name (img2dataset's per-shard
   * `.parquet` beside the `.tar`), put in place before it.
   */
  readonly companions: readonly string[];
  /** @param stem the shard's path without an extension, e.g. `out/00003` */
  open(stem: string): ShardWriter;
}

/** The ends of the names of a shard's files: `.tar`, its companions, `_stats.json`. */
export function shardSuffixes(format: ShardFormat): string[] {
  return [`.${format.extension}`, ...format.companions.map((extension) => `.${extension}`), '_stats.json'];
}

/** What the layout decides: the samples' keys and the stats file of a completed shard. */
interface ShardNaming {
  key(shardName: string, position: number, sample: Sample): string;
  stats(shard: CompletedShard): string;
}

interface CompletedShard extends ShardRecord {
  /** The shard's file name. */
  readonly file: string;
  readonly bytes: number;
  readonly firstKey: string;
  readonly lastKey: string;
}

const NATIVE_NAMING: ShardNaming = {
  key: (_shardName, _position, sample) => sample.id,
  stats: ({ file, samples, bytes, firstKey, lastKey, completedAt }) =>
    `${JSON.stringify({ shard: file, samples, bytes, first_key: firstKey, last_key: lastKey, completed_at: new Date(completedAt).toISOString() }, null, 2)}\n`,
};

function namingOf({ layout, samplesPerShard }: SinkContext): ShardNaming {
  if (layout !== 'img2dataset') return NATIVE_NAMING;
  return { key: (shardName, position) => sampleKey(shardName, position, samplesPerShard), stats: shardStats };
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
  const naming = namingOf(context);
  const book = context.shared ? await sharedBook(context.shared, output, format) : await localBook(context, format);
  let nextShard = book.firstShard;
  let open: { shard: number; name: string; writer: ShardWriter; samples: number; bytes: number; first: string; last: string; startedAt: number } | undefined;

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
   * Completes the open shard: its stats first, then the shard renamed into place (after
   * its companions), then its samples committed. A kill between the rename and the commit leaves a complete
   * shard whose samples are pending: the next open commits them (one machine) or the
   * next attempt at the job writes the shard again under the same name (workers).
   */
  const finish = async () => {
    if (!open) return;
    const { shard, name, writer, samples, bytes, first, last, startedAt } = open;
    const stats = naming.stats({ file: `${name}.${format.extension}`, samples, bytes, firstKey: first, lastKey: last, startedAt, completedAt: Date.now() });
    try {
      await writeFilesAtomically(output, [[`${name}_stats.json`, stats]]);
      await writer.finish();
    } catch (error) {
      await rm(join(output, `${name}_stats.json`), { force: true });
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
        const name = book.name(shard);
        open = { shard, name, writer: format.open(join(output, name)), samples: 0, bytes: 0, first: '', last: '', startedAt: Date.now() };
      }
      const key = naming.key(open.name, open.samples, sample);
      const described = describeSample(sample, open.shard, context.keptColumns, key);
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
      if (open.samples === 0) open.first = key;
      open.samples++;
      open.bytes += bytes;
      open.last = key;
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
  try {
    await settleEarlierShards(index, output, format);
    // Keys and fields follow from the layout: shards of another would not read as one dataset.
    const layout = context.layout ?? 'native';
    const recorded = index.setting('layout') ?? (index.lastShard() >= 0 ? 'native' : undefined);
    if (recorded !== undefined && recorded !== layout) {
      throw new UsageError(`${output} was written with --layout ${recorded}; this run asks for ${layout}: use the same layout (or a new output folder)`);
    }
    index.recordSetting('layout', layout);
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
  const pattern = new RegExp(`^${escapeRegExp(shared.job)}-(\\d{2,})(?:${shardSuffixes(format).map(escapeRegExp).join('|')})$`);
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
 * (their shard never completed, so they are fetched again); a stats file or companion
 * without its shard is removed.
 */
async function settleEarlierShards(index: SampleIndex, output: string, format: ShardFormat): Promise<void> {
  const fileOf = (name: string) => join(output, `${name}.${format.extension}`);
  for (const shard of index.pendingShards()) {
    if (await exists(fileOf(shardName(shard)))) index.commitShard(shard);
  }
  index.dropPending();
  const [, ...besides] = shardSuffixes(format);
  const pattern = new RegExp(`^(\\d{5,})(?:${besides.map(escapeRegExp).join('|')})$`);
  for (const name of await readdir(output)) {
    const match = pattern.exec(name);
    if (match && !(await exists(fileOf(match[1]!)))) await rm(join(output, name), { force: true });
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
