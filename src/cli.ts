/**
 * The command line: parses flags (commander) into `PipelineOptions`, runs the pipeline,
 * prints the summary, and turns the outcome into an exit code:
 * 0 when the run finished (row failures are in the summary), 2 for usage or input
 * errors found at start, 1 for a fatal error mid-run.
 */
import { Command, CommanderError, Option } from 'commander';
import { byteSize, decimal, integer, list, rate, rowRange, seconds } from './cli-values.js';
import { TryLater, UsageError, errorMessage } from './errors.js';
import {
  CHROMA_SUBSAMPLINGS,
  DEFAULT_COLUMNS,
  DEFAULT_USER_AGENT,
  IMGIX_STYLE_HOSTS,
  PNG_FILTERS,
  VERSION,
  resolveOptions,
  type ChromaSubsampling,
  type ColumnNames,
  type Options,
  type PipelineOptions,
  type PngFilter,
} from './options.js';
import { DEFAULT_DISALLOWED_ROBOTS_TAGS } from './fetch/robots.js';
import { RESIZE_MODES, type ResizeMode } from './image/size-rule.js';
import type { MetadataCoverage } from './sinks/sample-index.js';
import type { StateStore } from './state/store.js';

export const EXIT_OK = 0;
export const EXIT_FATAL = 1;
export const EXIT_USAGE = 2;
/** sysexits' EX_TEMPFAIL: another run holds the output; try again later. */
export const EXIT_LOCKED = 75;
export const EXIT_ON_SIGNAL: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/** The exit code an error ends a command with: 2 for usage, 75 for "not now", else 1. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE; // commander printed it
  if (error instanceof UsageError) return EXIT_USAGE;
  return error instanceof TryLater ? EXIT_LOCKED : EXIT_FATAL;
}

/**
 * The first SIGINT or SIGTERM stops gracefully (aborts `stop`, after `onFirst`); a second
 * one leaves at once (files are still whole: every file is renamed into place complete,
 * temporary ones are swept at the next start).
 */
export interface SignalStop {
  readonly signal: globalThis.AbortSignal;
  /** The exit code for a command that ended normally: 130 or 143 after a signal. */
  exitCode(): number;
  received(): 'SIGINT' | 'SIGTERM' | undefined;
  dispose(): void;
}

export function stopOnSignals(onFirst: (name: 'SIGINT' | 'SIGTERM') => void = () => {}): SignalStop {
  const stop = new AbortController();
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (name: 'SIGINT' | 'SIGTERM') => {
    if (received) process.exit(EXIT_ON_SIGNAL[name]);
    received = name;
    onFirst(name);
    stop.abort();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    exitCode: () => (received ? EXIT_ON_SIGNAL[received] : EXIT_OK),
    received: () => received,
    dispose: () => void process.off('SIGINT', onSignal).off('SIGTERM', onSignal),
  };
}

export interface Flags {
  input?: string[];
  inputFormat?: 'ndjson' | 'csv' | 'parquet';
  rows?: { first: number; last: number };
  output: string;
  idColumn: string;
  urlColumn: string;
  captionColumn: string;
  fallbackCaptionColumn: string;
  widthColumn: string;
  heightColumn: string;
  verifyHashColumn?: string;
  concurrency?: number;
  perHostConcurrency?: number;
  rate?: number;
  timeout?: number;
  connectTimeout?: number;
  headersTimeout?: number;
  idleTimeout?: number;
  ignoreRobotsTag?: boolean;
  disallowedRobotsTags?: string[];
  cdnResize?: boolean;
  cdnResizeHosts?: string[];
  maxBytes?: number;
  retries?: number;
  patience?: number;
  retryDelay?: number;
  userAgent?: string;
  proxy?: string;
  insecure?: boolean;
  http2?: boolean;
  resize?: ResizeMode;
  resolution?: number;
  megapixels?: number;
  round?: number;
  upscale: boolean;
  skipSmall?: boolean;
  minMegapixels?: number;
  minSide?: number;
  maxAspect?: number;
  format?: 'png' | 'jpeg' | 'webp' | 'original';
  quality?: number;
  lossless?: boolean;
  keepAlpha?: boolean;
  pngCompression?: number;
  pngFilter?: PngFilter;
  chromaSubsampling?: ChromaSubsampling;
  maxPixels?: number;
  imageConcurrency?: number;
  sink: string;
  samplesPerShard?: number;
  dataloaderRoot?: string;
  metadataEvery?: number;
  subfolders?: number;
  keepColumns?: string[] | 'all';
  maxRowBytes?: number;
  results?: string;
  summary?: string;
  metricsFile?: string;
  quiet?: boolean;
  logEvery?: number;
  progress?: boolean;
  resume: boolean;
  maxAttempts?: number;
  retryFailed?: boolean;
  dedupe?: 'url';
  grace?: number;
}

export function buildCommand(): Command {
  const command = new Command()
    .name('photo-concept-pipeline')
    .description(
      'Fetch the images of a list of URLs with captions, resize them and write a training-ready dataset.\n' +
        'Rows come from --input (NDJSON, CSV or Parquet) or as NDJSON on standard input.',
    )
    .version(VERSION)
    .usage('--output DIR [--input FILE] [options]')
    .addOption(new Option('-i, --input <file|url...>', 'rows to read: .parquet, .csv or NDJSON (also .gz, .zst), files, globs (quoted: "shards/*.parquet") or http(s) URLs, read one after another (default: standard input)'))
    .option('--rows <first-last>', 'read only these rows, 1-based and inclusive (NDJSON lines, CSV records, Parquet rows), e.g. 1001-2000 or 1001-', rowRange)
    .addOption(new Option('--input-format <format>', 'input format (default: from the file name, else ndjson)').choices(['ndjson', 'csv', 'parquet']))
    .option('--max-row-bytes <size>', 'longest input row read, e.g. 4MiB: a longer NDJSON line, CSV record or Parquet row fails as bad_row without being held whole (default: 4MiB)', byteSize)
    .requiredOption('-o, --output <dir>', 'folder to write the dataset into (created if missing)');
  return withColumnOptions(command)
    .option('-c, --concurrency <n>', 'requests in flight at once, all hosts together (default: 16)', integer)
    .option('--per-host-concurrency <n>', 'most requests in flight to one host; halved on 429 or 503, recovers slowly (default: 16)', integer)
    .option('--rate <n>', 'most requests started per second per host, a hard ceiling over the pace that adapts to 429 and 503 (default: no ceiling)', rate)
    .option('--timeout <seconds>', 'total deadline for one attempt, queueing for a connection included (default: 60)', seconds)
    .option('--connect-timeout <seconds>', 'deadline for opening a connection (default: 10)', seconds)
    .option('--headers-timeout <seconds>', 'deadline for the response headers (default: 30)', seconds)
    .option('--idle-timeout <seconds>', 'longest pause allowed inside a response body (default: 30)', seconds)
    .option('--max-bytes <size>', 'largest body accepted, e.g. 64MiB; enforced while it streams (default: 64MiB)', byteSize)
    .option('--retries <n>', 'extra attempts after a timeout, reset, 5xx or short body (default: 3)', integer)
    .option('--patience <seconds>', 'how long a sample may keep being told to wait (429, 503) before it fails; waiting spends no --retries (default: 600)', seconds)
    .option('--retry-delay <seconds>', 'first backoff before a retry, doubled each time (default: 1)', seconds)
    .option('--proxy <url>', 'fetch through this HTTP proxy (default: HTTPS_PROXY / HTTP_PROXY, minus NO_PROXY, when set)')
    .option('--insecure', 'accept any TLS certificate (hosts with broken chains); anyone on the path could then change the images (default: check)')
    .option('--http2', 'offer HTTP/2 to HTTPS hosts (default: HTTP/1.1 keep-alive, faster in the README\'s measurement)')
    .option('--user-agent <text>', `User-Agent header (default: "${DEFAULT_USER_AGENT}")`)
    .option('--disallowed-robots-tags <tags>', `X-Robots-Tag directives that opt an image out, comma-separated, e.g. noai,noimageai,noindex,noimageindex (default: ${DEFAULT_DISALLOWED_ROBOTS_TAGS.join(',')})`, list)
    .option('--ignore-robots-tag', 'fetch images whatever their X-Robots-Tag says (default: honour it)')
    .option('--cdn-resize', `ask imgix-style CDNs (${IMGIX_STYLE_HOSTS.join(', ')}) for an image scaled near the target: less bandwidth, the CDN's resampling`)
    .option('--cdn-resize-hosts <hosts>', 'hosts --cdn-resize applies to, comma-separated (implies --cdn-resize)', list)
    .addOption(
      new Option('--resize <mode>', 'shortest: shorter side to --resolution (the reference rule); area: about --megapixels; longest: longer side to --resolution; center-crop: a --resolution square; none: as fetched (default: shortest)').choices(RESIZE_MODES),
    )
    .option('-r, --resolution <px>', 'target side for shortest, longest and center-crop (default: 1024)', integer)
    .option('--megapixels <n>', 'target area for --resize area, e.g. 1.25 (default: 1)', decimal)
    .option('--round <n>', 'round each side to the nearest multiple of this; 1 keeps sizes exact (default: 64)', integer)
    .option('--no-upscale', 'keep images smaller than the target at their size')
    .option('--skip-small', 'with --no-upscale, skip images smaller than the target instead (reason filtered_size)')
    .option('--min-megapixels <n>', 'skip smaller images: before the fetch from the width and height columns, after it from the real size', decimal)
    .option('--min-side <px>', 'skip images whose shorter side is smaller', integer)
    .option('--max-aspect <ratio>', 'skip images whose long side / short side is larger, e.g. 3', decimal)
    .addOption(new Option('-f, --format <format>', 'output format; original (with --resize none) keeps the fetched bytes (default: png; original with --resize none)').choices(['png', 'jpeg', 'webp', 'original']))
    .option('-q, --quality <n>', 'jpeg or webp quality, 1-100 (default: jpeg 95, webp 90)', integer)
    .option('--lossless', 'lossless webp')
    .option('--keep-alpha', 'keep transparency (png, webp) instead of flattening onto white')
    .option('--png-compression <level>', 'png zlib level, 0 fastest to 9 smallest (default: 6)', integer)
    .addOption(new Option('--png-filter <filter>', 'png row filters: adaptive (small files, like PIL) or none (faster, about 55% larger) (default: adaptive)').choices(PNG_FILTERS))
    .addOption(new Option('--chroma-subsampling <ratio>', 'jpeg chroma: 4:2:0 (like PIL and OpenCV) or 4:4:4 (full colour resolution, ~30% larger, slower) (default: 4:2:0)').choices(CHROMA_SUBSAMPLINGS))
    .option('--max-pixels <n>', 'refuse images with more pixels than this, read from the header (default: 100000000)', integer)
    .option('--image-concurrency <n>', 'images decoded at once (default: number of cores)', integer)
    .option('--sink <name|module>', 'where samples go: dir (SimpleTuner folder), webdataset (tar shards), parquet (shards), null, or a sink module path or package', 'dir')
    .option('--samples-per-shard <n>', 'samples per shard for webdataset and parquet (default: 1000)', integer)
    .option('--dataloader-root <path>', 'dir sink: absolute path the output folder will have where SimpleTuner reads it, for simpletuner-dataloader.json (default: the output folder)')
    .option('--keep-columns <names>', "carry these input columns (comma-separated) or 'all' (Parquet) into metadata.parquet, the WebDataset .json and the Parquet shards, with their Parquet types", (value: string) => (value.trim() === 'all' ? 'all' : list(value)))
    .option('--subfolders <n>', 'dir sink: spread files over N folders (000 to N-1, by a hash of the id) so none holds a million; 0 keeps one flat folder (default: 0)', integer)
    .option('--metadata-every <seconds>', 'dir sink: refresh metadata.parquet and the dataloader config this often during a run (the first time after 30 s at the latest), 0 for only at the end (default: 300)', seconds)
    .option('--results <file>', 'write one NDJSON line per row: id, url, status, reason, size')
    .option('--summary <file>', 'write the run summary as JSON')
    .option('--metrics-file <file>', 'Prometheus text-format counters, rewritten every 5 s (node_exporter textfile collector)')
    .option('--quiet', 'print only errors and the final summary')
    .option('--log-every <seconds>', 'seconds between plain progress lines when not on a terminal, 0 for none (default: 60)', seconds)
    .option('--no-progress', 'plain progress lines even on a terminal')
    .option('--no-resume', 'keep no state: fetch every row, even ones saved by an earlier run')
    .option('--max-attempts <n>', 'runs in which a transiently failing sample is tried, in total (default: 5)', integer)
    .option('--retry-failed', 'try every failed sample once more, permanent failures included')
    .addOption(new Option('--dedupe <what>', 'url: skip a row whose URL was already saved under another id (reason duplicate_url)').choices(['url']))
    .option('--grace <seconds>', 'after SIGINT or SIGTERM, time for rows in flight to finish (default: 30)', seconds)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
}

/** Adds the flags naming the input's columns (a run's and enqueue's). */
export function withColumnOptions(command: Command): Command {
  const column = (name: keyof ColumnNames, flags: string, description: string) => new Option(flags, description).default(DEFAULT_COLUMNS[name]);
  return command
    .addOption(column('id', '--id-column <name>', 'column holding the sample id'))
    .addOption(column('url', '--url-column <name>', 'column holding the image URL'))
    .addOption(column('caption', '--caption-column <name>', 'column holding the caption'))
    .addOption(column('fallbackCaption', '--fallback-caption-column <name>', 'caption used when the caption is null or empty'))
    .addOption(column('width', '--width-column <name>', 'column holding the original width (optional)'))
    .addOption(column('height', '--height-column <name>', 'column holding the original height (optional)'))
    .option('--verify-hash-column <name>', "column holding each image's sha256 (hex): a sample whose fetched bytes differ fails as hash_mismatch (default: no check)");
}

/** The column flags' values as the input options want them. */
export function columnsFrom(flags: Pick<Flags, 'idColumn' | 'urlColumn' | 'captionColumn' | 'fallbackCaptionColumn' | 'widthColumn' | 'heightColumn' | 'verifyHashColumn'>): ColumnNames {
  return {
    id: flags.idColumn,
    url: flags.urlColumn,
    caption: flags.captionColumn,
    fallbackCaption: flags.fallbackCaptionColumn,
    width: flags.widthColumn,
    height: flags.heightColumn,
    ...(flags.verifyHashColumn === undefined ? {} : { hash: flags.verifyHashColumn }),
  };
}

export function toPipelineOptions(flags: Flags, stdin: NodeJS.ReadableStream): PipelineOptions {
  const defined = <T extends object>(value: T): T =>
    Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
  return {
    output: flags.output,
    input: defined({
      ...(flags.input === undefined ? {} : flags.input.length === 1 ? { path: flags.input[0] } : { paths: flags.input }),
      format: flags.inputFormat,
      rows: flags.rows,
      keep: flags.keepColumns,
      maxRowBytes: flags.maxRowBytes,
      stream: flags.input === undefined ? (stdin as import('node:stream').Readable) : undefined,
      columns: columnsFrom(flags),
    }),
    fetch: defined({
      concurrency: flags.concurrency,
      perHostConcurrency: flags.perHostConcurrency,
      ratePerSecond: flags.rate,
      timeoutMs: flags.timeout,
      connectTimeoutMs: flags.connectTimeout,
      headersTimeoutMs: flags.headersTimeout,
      idleTimeoutMs: flags.idleTimeout,
      respectRobotsTag: flags.ignoreRobotsTag ? false : undefined,
      disallowedRobotsTags: flags.disallowedRobotsTags,
      cdnResizeHosts: flags.cdnResizeHosts ?? (flags.cdnResize ? IMGIX_STYLE_HOSTS : undefined),
      maxBytes: flags.maxBytes,
      retries: flags.retries,
      patienceMs: flags.patience,
      retryDelayMs: flags.retryDelay,
      userAgent: flags.userAgent,
      proxy: flags.proxy,
      insecure: flags.insecure,
      http2: flags.http2,
    }),
    image: defined({
      resize: flags.resize,
      resolution: flags.resolution,
      megapixels: flags.megapixels,
      round: flags.round,
      upscale: flags.upscale,
      skipSmall: flags.skipSmall,
      minMegapixels: flags.minMegapixels,
      minSide: flags.minSide,
      maxAspect: flags.maxAspect,
      format: flags.format,
      quality: flags.quality,
      lossless: flags.lossless,
      keepAlpha: flags.keepAlpha,
      pngCompressionLevel: flags.pngCompression,
      pngFilter: flags.pngFilter,
      chromaSubsampling: flags.chromaSubsampling,
      maxPixels: flags.maxPixels,
      concurrency: flags.imageConcurrency,
    }),
    sink: flags.sink,
    ...(flags.samplesPerShard === undefined ? {} : { samplesPerShard: flags.samplesPerShard }),
    ...(flags.dataloaderRoot === undefined ? {} : { dataloaderRoot: flags.dataloaderRoot }),
    ...(flags.metadataEvery === undefined ? {} : { metadataEveryMs: flags.metadataEvery }),
    ...(flags.subfolders === undefined ? {} : { subfolders: flags.subfolders }),
    report: defined({
      resultsPath: flags.results,
      summaryPath: flags.summary,
      metricsPath: flags.metricsFile,
      quiet: flags.quiet,
      logEveryMs: flags.logEvery,
      progressBar: flags.progress !== false && process.stderr.isTTY === true,
    }),
    resume: defined({ enabled: flags.resume, maxAttempts: flags.maxAttempts, retryFailed: flags.retryFailed, dedupeUrls: flags.dedupe === 'url' ? true : undefined }),
    ...(flags.grace === undefined ? {} : { graceMs: flags.grace }),
  };
}

/** The command line's flags; throws CommanderError (already printed) or UsageError. */
export function parseFlags(argv: readonly string[]): Flags {
  const command = buildCommand();
  command.parse([...argv], { from: 'user' });
  if (command.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(command.args[0])}`);
  return command.opts<Flags>();
}

/** Commands besides a run; each loads only what it needs. */
const COMMANDS: Readonly<Record<string, (argv: readonly string[]) => Promise<number>>> = {
  status: (argv) => status(argv),
  enqueue: async (argv) => (await import('./queue/commands.js')).enqueueCommand(argv),
  worker: async (argv) => (await import('./queue/commands.js')).workerCommand(argv),
  finalize: async (argv) => (await import('./queue/commands.js')).finalizeCommand(argv),
};

export async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? COMMANDS[argv[0]] : undefined;
  if (command) return command(argv.slice(1));
  let flags: Flags;
  let options: Options;
  try {
    flags = parseFlags(argv);
    options = resolveOptions(toPipelineOptions(flags, process.stdin));
  } catch (error) {
    if (error instanceof CommanderError) return exitCodeOf(error); // commander printed it
    // Anything wrong with the flags or their values is the user's to fix.
    process.stderr.write(`error: ${errorMessage(error)}\n`);
    return EXIT_USAGE;
  }
  // Only a run loads the image, HTTP and Parquet libraries: --help, --version and status
  // stay quick, and work where a native module (sharp's) cannot load.
  const run = await import('./run.js').catch((error: unknown) => {
    const reason = errorMessage(error).split('\n')[0];
    process.stderr.write(`error: a run needs sharp, undici and parquet-wasm, and one of them could not be loaded: ${reason} (--help, --version and status work without them)\n`);
    return undefined;
  });
  if (!run) return EXIT_FATAL;

  const signals = stopOnSignals();
  try {
    const summary = await run.runPipeline(options, { stop: signals.signal });
    process.stderr.write(`${run.formatSummary(summary, flags.output)}\n`);
    return signals.exitCode();
  } catch (error) {
    process.stderr.write(`error: ${errorMessage(error)}\n`);
    return exitCodeOf(error);
  } finally {
    signals.dispose();
    // stdin may still be open (a run stopped early): it must not hold the process.
    process.stdin.destroy();
  }
}

/** `status --output DIR`: what the resume state holds; `status --redis URL --queue NAME`: a queue's. */
async function status(argv: readonly string[]): Promise<number> {
  const command = new Command()
    .name('photo-concept-pipeline status')
    .description('Print what the resume state of an output folder holds, or (with --redis) the state of a queue and its workers.')
    .option('-o, --output <dir>', 'the output folder of earlier runs')
    .option('--redis <url>', "a queue's Redis server (with --queue): jobs, samples, workers")
    .option('--queue <name>', 'the queue (with --redis)')
    .option('--max-attempts <n>', 'as given to the runs, to count pending retries (default: 5)', integer)
    .option('--json', 'print JSON')
    .exitOverride();
  let flags: { output?: string; redis?: string; queue?: string; maxAttempts?: number; json?: boolean };
  try {
    command.parse([...argv], { from: 'user' });
    flags = command.opts();
  } catch (error) {
    return error instanceof CommanderError && error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (flags.redis !== undefined) return (await import('./queue/commands.js')).queueStatusCommand({ ...flags, redis: flags.redis });
  if (flags.output === undefined) {
    process.stderr.write('error: status needs --output DIR (or --redis URL --queue NAME)\n');
    return EXIT_USAGE;
  }
  const [state, index] = await Promise.all([import('./state/store.js'), import('./sinks/sample-index.js')]);
  let store: StateStore;
  try {
    store = state.StateStore.open(flags.output, { readonly: true });
  } catch (error) {
    process.stderr.write(`error: no state in ${flags.output} (${errorMessage(error)}): has a run written there?\n`);
    return EXIT_USAGE;
  }
  try {
    const summary = store.summary(flags.maxAttempts ?? 5);
    const metadata = index.SampleIndex.coverage(flags.output, 'dir');
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(metadata ? { ...summary, metadata } : summary, null, 2)}\n`);
      return EXIT_OK;
    }
    const failures = Object.entries(summary.failures).map(([reason, count]) => `  ${reason}: ${count}`);
    const run = summary.lastRun;
    const lines = [
      `output: ${flags.output}`,
      `saved: ${summary.saved}`,
      `failed: ${summary.failed}`,
      ...failures,
      `pending retries: ${summary.pendingRetries}`,
      run
        ? `last run: #${run.run} (pid ${run.pid}) started ${run.startedAt} UTC, ` +
          (run.endedAt ? `ended ${run.endedAt} UTC (${run.exit}): ${run.rows} rows, ${run.saved} saved, ${run.failed} failed, ${run.skipped} skipped` : 'still running or killed')
        : 'last run: none',
      ...(metadata ? [metadataLine(metadata)] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT_OK;
  } finally {
    store.close();
  }
}

/** What metadata.parquet covers of the stored images: what SimpleTuner will train on. */
function metadataLine(metadata: MetadataCoverage): string {
  if (metadata.metadataRows === undefined) return `metadata.parquet: not written yet (${metadata.stored} images stored)`;
  const covers = `metadata.parquet: covers ${metadata.metadataRows} of ${metadata.stored} stored images, written ${metadata.refreshedAt} UTC`;
  return metadata.current ? covers : `${covers}; images stored since then are added by the next refresh or run`;
}
