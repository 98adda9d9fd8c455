/**
 * What every worker of a queue must agree on: the settings that decide which files a
 * sample becomes. The first worker records them; a worker started differently is refused
 * (its samples would not match the dataset), and `finalize` reads them back.
 */
import type { Redis } from 'ioredis';
import { UsageError } from '../errors.js';
import type { ResizeMode } from '../image/size-rule.js';
import type { Options } from '../options.js';
import type { Layout } from '../sinks/contract.js';
import type { MissingCaptions, Sample } from '../sources/options.js';
import type { DedupeKey } from '../state/options.js';
import type { QueueKeys } from './connection.js';

export interface OutputSettings {
  readonly sink: string;
  readonly format: string;
  readonly resize: ResizeMode;
  readonly resolution: number;
  readonly megapixels: number;
  readonly round: number;
  readonly upscale: boolean;
  readonly samplesPerShard: number;
  /** `--dedupe`: every worker must keep the URLs and hashes it dedupes by, or one would miss what another saved. */
  readonly dedupe: readonly DedupeKey[];
  /** `--missing-captions`: whether a row without a caption becomes a sample. */
  readonly missingCaptions: MissingCaptions;
  /** `--subfolders`: where a sample's files are follows from it. */
  readonly subfolders: number;
  /** `--keep-columns`: the metadata's columns. */
  readonly keepColumns: readonly string[] | 'all' | null;
  /** `--layout`: the shards' keys and fields. */
  readonly layout: Layout;
  /** `--sample` and `--seed`: which rows are in the dataset at all. */
  readonly sample: Sample | null;
}

export function outputSettings(options: Options): OutputSettings {
  if (typeof options.sink !== 'string') throw new UsageError('a queue worker needs a sink given by name or module path');
  const { format, resize, resolution, megapixels, round, upscale } = options.image;
  return { sink: options.sink, format, resize, resolution, megapixels, round, upscale, samplesPerShard: options.samplesPerShard, dedupe: options.resume.dedupe, missingCaptions: options.input.missingCaptions, subfolders: options.subfolders, keepColumns: options.input.keep ?? null, layout: options.layout, sample: options.input.sample ?? null };
}

/** Records `settings` for the queue, or checks them against what the first worker recorded. */
export async function agreeOnSettings(redis: Redis, keys: QueueKeys, queue: string, settings: OutputSettings): Promise<void> {
  await redis.set(keys.settings, JSON.stringify(settings), 'NX');
  const recorded = await readSettings(redis, keys);
  const same = (key: keyof OutputSettings) => JSON.stringify(recorded?.[key] ?? null) === JSON.stringify(settings[key] ?? null);
  const differing = recorded ? (Object.keys(settings) as Array<keyof OutputSettings>).filter((key) => !same(key)) : [];
  if (recorded && differing.length > 0) {
    const what = differing.map((key) => `${key} ${JSON.stringify(recorded[key])} (this worker: ${JSON.stringify(settings[key])})`);
    throw new UsageError(`queue ${queue} writes its dataset with ${what.join(', ')}: start every worker with the same --sink, --format, --resize, --resolution, --megapixels, --round, --no-upscale, --samples-per-shard, --dedupe, --missing-captions, --subfolders, --keep-columns, --layout, --sample and --seed`);
  }
}

export async function readSettings(redis: Redis, keys: QueueKeys): Promise<OutputSettings | undefined> {
  const text = await redis.get(keys.settings);
  // Queues started before --layout existed wrote the native layout.
  return text === null ? undefined : { layout: 'native', ...(JSON.parse(text) as Partial<OutputSettings>) } as OutputSettings;
}
