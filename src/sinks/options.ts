/** Where samples go and how the built-in sinks lay them out. */
import { UsageError } from '../errors.js';
import { absolutePath, defined, integer, oneOf } from '../util/validate.js';
import type { Layout, SinkFactory } from './contract.js';

/** `--layout`: see `Layout` (contract.ts) and docs/sinks.md. */
export const LAYOUTS: readonly Layout[] = ['native', 'img2dataset'];

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
  /** webdataset and parquet sinks: `native` or `img2dataset` names, keys and fields. */
  readonly layout: Layout;
}

export const SINK_DEFAULTS = Object.freeze({ sink: 'dir', samplesPerShard: 1000, metadataEveryMs: 300_000, subfolders: 0, layout: 'native' } satisfies Partial<SinkOptions>);

export function resolveSinkOptions(given: Partial<SinkOptions> = {}): SinkOptions {
  const value = { ...SINK_DEFAULTS, ...defined(given) };
  return {
    sink: value.sink,
    samplesPerShard: integer('--samples-per-shard', value.samplesPerShard, 1, 10_000_000),
    ...(value.dataloaderRoot === undefined ? {} : { dataloaderRoot: absolutePath('--dataloader-root', value.dataloaderRoot) }),
    metadataEveryMs: integer('--metadata-every', value.metadataEveryMs, 0, 24 * 3600_000),
    subfolders: integer('--subfolders', value.subfolders, 0, 1_000_000),
    layout: layoutOf(value.layout, value.sink),
  };
}

/**
 * img2dataset's `files` format (`NNNNN/KEY.jpg` folders of keys numbered by shard) has no
 * counterpart in the dir sink, which names files by id, writes them concurrently and is
 * read by SimpleTuner by those names: the layout is refused there rather than ignored.
 */
function layoutOf(layout: string, sink: string | SinkFactory): Layout {
  oneOf('--layout', layout, LAYOUTS);
  if (layout === 'img2dataset' && sink === 'dir') {
    throw new UsageError('--layout img2dataset is for the webdataset and parquet sinks: the dir sink names files by id for SimpleTuner (use --sink webdataset or --sink parquet)');
  }
  return layout;
}
