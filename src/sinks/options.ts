/** Where samples go and how the built-in sinks lay them out. */
import { absolutePath, defined, integer } from '../util/validate.js';
import type { SinkFactory } from './contract.js';

export interface SinkOptions {
  /** `dir`, `webdataset`, `parquet`, `null`, a module path or package name, or a factory (from code). */
  readonly sink: string | SinkFactory;
  /** Samples per shard for the shard sinks. */
  readonly samplesPerShard: number;
  /**
   * The absolute path the output folder will have when a trainer reads it (the GPU
   * machine it is copied to); the output's own absolute path when absent.
   */
  readonly dataloaderRoot?: string;
  /** How often the dataset-wide files (metadata.parquet) are refreshed during a run; 0: at the end only. */
  readonly metadataEveryMs: number;
  /** dir sink: spread sample files over this many folders; 0 keeps them in the output folder. */
  readonly subfolders: number;
}

export const SINK_DEFAULTS = Object.freeze({ sink: 'dir', samplesPerShard: 1000, metadataEveryMs: 300_000, subfolders: 0 } satisfies Partial<SinkOptions>);

export function resolveSinkOptions(given: Partial<SinkOptions> = {}): SinkOptions {
  const value = { ...SINK_DEFAULTS, ...defined(given) };
  return {
    sink: value.sink,
    samplesPerShard: integer('--samples-per-shard', value.samplesPerShard, 1, 10_000_000),
    ...(value.dataloaderRoot === undefined ? {} : { dataloaderRoot: absolutePath('--dataloader-root', value.dataloaderRoot) }),
    metadataEveryMs: integer('--metadata-every', value.metadataEveryMs, 0, 24 * 3600_000),
    subfolders: integer('--subfolders', value.subfolders, 0, 1_000_000),
  };
}
