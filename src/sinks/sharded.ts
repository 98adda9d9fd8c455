/**
 * What the shard sinks (WebDataset tar, Parquet) share: samples go into the open shard,
 * written under a temporary name; after `samplesPerShard` samples (or at close, which a
 * stop signal also reaches) the shard is completed, renamed to `{shard:05d}.{ext}`, a
 * `{shard:05d}_stats.json` is written beside it, and its samples are committed in the
 * index. A shard cut short by a kill is never renamed: its temporary file is swept at the
 * next start and its samples are fetched again, so no sample appears in two shards.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';
import type { Sample, Sink, SinkContext } from './contract.js';
import { describeSample } from './metadata.js';
import { SampleIndex } from './sample-index.js';

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

export async function createShardedSink(context: SinkContext, format: ShardFormat): Promise<Sink> {
  const { output, samplesPerShard, log } = context;
  const removed = await removeStaleTemporaryFiles(output);
  if (removed > 0) log(`removed ${removed} unfinished shard file(s) left by an earlier run`);
  const index = new SampleIndex(output, format.name);
  let nextShard = Math.max(index.lastShard(), await lastShardOnDisk(output, format.extension)) + 1;
  let open: { shard: number; writer: ShardWriter; samples: number; bytes: number; first: string; last: string } | undefined;

  const finish = async () => {
    if (!open) return;
    const { shard, writer, samples, bytes, first, last } = open;
    open = undefined;
    await writer.finish();
    const name = shardName(shard);
    const stats = { shard: `${name}.${format.extension}`, samples, bytes, first_key: first, last_key: last, completed_at: new Date().toISOString() };
    await writeFilesAtomically(output, [[`${name}_stats.json`, `${JSON.stringify(stats, null, 2)}\n`]]);
    index.commitShard(shard);
  };

  return {
    concurrency: 1, // one shard file, written in order
    async has(id) {
      return index.has(id);
    },
    async write(sample) {
      if (!open) {
        const shard = nextShard++;
        open = { shard, writer: format.open(join(output, `${shardName(shard)}.${format.extension}`)), samples: 0, bytes: 0, first: sample.id, last: sample.id };
      }
      const described = describeSample(sample, open.shard);
      const bytes = await open.writer.append(sample, described);
      index.put(described, false);
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
        index.close();
      }
    },
  };
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
