/**
 * `finalize`: once the queue has drained, makes the shared output the dataset a
 * single-machine run would have written.
 *
 * - Temporary files (from workers killed mid-write) are removed.
 * - `dir`: every metadata part the workers wrote is merged into one `metadata.parquet`
 *   (one row per sample the shared state records saved; a sample stored twice by a dead
 *   worker and the one that took its job over has one row) and the SimpleTuner config is
 *   written beside it, both by the code the single-machine sink uses. Images and captions
 *   the state does not record saved (a worker killed between storing them and recording
 *   them, whose sample later failed) are removed, so the folder holds what the metadata says.
 * - `webdataset` and `parquet`: shards that a dead worker renamed into place but never
 *   recorded complete, and that no later attempt replaced, are removed.
 *
 * It can be run again at any time (after more jobs, say): each step starts from what the
 * shared state says, not from what an earlier finalize did.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import chain from 'stream-chain';
import fixUtf8Stream from 'stream-chain/utils/fixUtf8Stream.js';
import lines from 'stream-chain/utils/lines.js';
import { TryLater, UsageError } from '../errors.js';
import { METADATA_PARTS_DIR, datasetFileWriter, uncaptionedNote } from '../sinks/dir.js';
import { DirLayout, removeUnrecordedSamples } from '../sinks/dir-layout.js';
import type { KeptColumn } from '../sources/kept-columns.js';
import { parquetShards } from '../sinks/parquet.js';
import { SampleIndex, type IndexedSample } from '../sinks/sample-index.js';
import { shardSuffixes, type ShardFormat } from '../sinks/sharded.js';
import { tarShards } from '../sinks/webdataset.js';
import type { ImageFormat } from '../types.js';
import { connectRedis, keysOf } from './connection.js';
import { RedisState } from './redis-state.js';
import { UNFINISHED_STATES } from './jobs.js';
import { readSettings, type OutputSettings } from './settings.js';

export interface FinalizeSetup {
  readonly redisUrl: string;
  readonly queue: string;
  readonly output: string;
  /** Where the trainer will read the output (the config's paths). */
  readonly datasetRoot: string;
  /** Go on even though jobs are still waiting or running. */
  readonly force: boolean;
  readonly log: (line: string) => void;
}

export interface FinalizeOutcome {
  readonly sink: string;
  /** Samples the dataset holds (metadata rows, or samples in completed shards). */
  readonly samples: number;
  readonly removedFiles: number;
}

export class QueueNotDrained extends TryLater {
  override readonly name = 'QueueNotDrained';
}

export async function finalize(setup: FinalizeSetup): Promise<FinalizeOutcome> {
  const redis = await connectRedis(setup.redisUrl, 'finalize');
  const queue = new Queue(setup.queue, { connection: redis });
  try {
    const keys = keysOf(setup.queue);
    const settings = await readSettings(redis, keys);
    if (!settings) throw new UsageError(`no worker has run on queue ${setup.queue}: there is nothing to finalize`);
    const counts = await queue.getJobCounts(...UNFINISHED_STATES);
    const unfinished = Object.values(counts).reduce((sum, count) => sum + count, 0);
    if (unfinished > 0 && !setup.force) {
      throw new QueueNotDrained(`queue ${setup.queue} still has ${unfinished} job(s) waiting or running: finalize when it has drained (see status), or pass --force`);
    }
    const state = new RedisState(redis, keys);
    let removedFiles = await new DirLayout(setup.output, settings.subfolders, 'original').removeStaleTemporaryFiles(true);
    let samples: number;
    if (settings.sink === 'dir') {
      const kept = JSON.parse((await redis.get(`${keys.settings}:kept`)) ?? '[]') as KeptColumn[];
      const merged = await mergeMetadata(setup, settings, state, kept);
      samples = merged.samples;
      removedFiles += merged.removed;
    } else if (settings.sink === 'webdataset' || settings.sink === 'parquet') {
      // The shards' files as the workers wrote them (the kept columns change no name).
      const format = settings.sink === 'webdataset' ? tarShards(settings.layout, []) : parquetShards(settings.layout, [], settings.format as ImageFormat | 'original');
      const settled = await settleShards(setup.output, format, state);
      samples = settled.samples;
      removedFiles += settled.removed;
    } else {
      samples = (await state.counts()).saved;
    }
    return { sink: settings.sink, samples, removedFiles };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** Lines checked against the shared state per round trip. */
const CHECK_BATCH = 1_000;

async function mergeMetadata(setup: FinalizeSetup, settings: OutputSettings, state: RedisState, keptColumns: readonly KeptColumn[]): Promise<{ samples: number; removed: number }> {
  // The merge index is a local scratch database (never on the shared filesystem).
  const scratch = await mkdtemp(join(tmpdir(), 'photo-concept-pipeline-finalize-'));
  const index = new SampleIndex(scratch, 'dir');
  try {
    const partsDir = join(setup.output, METADATA_PARTS_DIR);
    const parts = (await readdir(partsDir).catch(() => [] as string[])).filter((name) => name.endsWith('.ndjson')).sort();
    let batch: IndexedSample[] = [];
    const flush = async () => {
      const saved = await state.savedAmong(batch.map(({ id }) => id));
      batch.forEach((sample, i) => saved[i] && index.put(sample, true));
      batch = [];
    };
    for (const part of parts) {
      for await (const line of chain([createReadStream(join(partsDir, part)), fixUtf8Stream(), lines()]) as AsyncIterable<string>) {
        const sample = parseLine(line);
        if (!sample) continue; // the broken last line of a worker killed mid-write
        batch.push(sample);
        if (batch.length >= CHECK_BATCH) await flush();
      }
    }
    await flush();
    const removed = await removeUnrecordedSamples(setup.output, (ids) => state.savedAmong(ids));
    const sizeRule = { resize: settings.resize, resolution: settings.resolution, megapixels: settings.megapixels, round: settings.round, upscale: settings.upscale };
    const { uncaptioned } = await datasetFileWriter(index, { output: setup.output, datasetRoot: setup.datasetRoot, sizeRule, log: setup.log, keptColumns }).refresh();
    if (uncaptioned > 0) setup.log(uncaptionedNote(uncaptioned));
    return { samples: SampleIndex.coverage(scratch, 'dir')?.stored ?? 0, removed };
  } finally {
    index.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

function parseLine(line: string): IndexedSample | undefined {
  try {
    const sample = JSON.parse(line) as IndexedSample;
    return typeof sample?.id === 'string' && typeof sample.filename === 'string' ? sample : undefined;
  } catch {
    return undefined;
  }
}

/** Removes shards (and their companions and stats) beyond each job's completed count; counts the samples of the rest. */
async function settleShards(output: string, format: ShardFormat, state: RedisState): Promise<{ samples: number; removed: number }> {
  const completed = await state.completedShards();
  const suffixes = shardSuffixes(format).map((suffix) => suffix.replace(/[.]/g, '\\.'));
  const pattern = new RegExp(`^(rows-\\d+-\\d+)-(\\d{2,})(?:${suffixes.join('|')})$`);
  let removed = 0;
  for (const name of await readdir(output)) {
    const match = pattern.exec(name);
    if (!match) continue;
    if (Number(match[2]) < (completed.get(match[1]!) ?? 0)) continue;
    await rm(join(output, name), { force: true });
    removed++;
  }
  return { samples: await state.storedCount(), removed };
}
