/**
 * Every flag of every command, declared once: its name, how its value is read, where it
 * lands in the options, its help, which commands take it, and which section of
 * docs/cli.md lists it. The commander options of each command (cli/command.ts), the
 * typed flags, the mapping to `PipelineOptions`, the defaults `--help` shows, docs/cli.md
 * and the README's table of common flags (cli/docs.ts) all come from here.
 *
 * A flag's key is commander's name for it: `perHostConcurrency` is `--per-host-concurrency`,
 * and with `negate`, `upscale` is `--no-upscale`. Defaults are the options' own (each
 * subsystem declares them), shown from where the flag lands; a flag that lands nowhere
 * (read by its command) carries a `fallback`.
 */
import { IMGIX_STYLE_HOSTS } from '../fetch/options.js';
import { CHROMA_SUBSAMPLINGS, PNG_FILTERS } from '../image/options.js';
import { RESIZE_MODES } from '../image/size-rule.js';
import type { Options } from '../options.js';
import { LAYOUTS } from '../sinks/options.js';
import { INPUT_FORMATS, MISSING_CAPTIONS } from '../sources/options.js';
import { DEDUPE_KEYS } from '../state/options.js';
import { HASH_ALGORITHMS } from '../types.js';
import { byteSize, choice, choiceList, decimal, fraction, integer, list, positiveDecimal, rowRange, seconds, several, text, type ValueKind } from './values.js';

export type CommandName = 'run' | 'worker' | 'enqueue' | 'finalize' | 'status' | 'report';

export const SECTIONS = ['Input', 'Fetching', 'Images', 'Output', 'Reports and progress', 'Resume and shutdown', 'Queue', 'Status and report'] as const;
export type Section = (typeof SECTIONS)[number];

/** A place in the options, e.g. `fetch.concurrency`. */
export type OptionPath = PathsOf<Options>;
type PathsOf<T, Prefix extends string = ''> = {
  [K in keyof T & string]-?: `${Prefix}${K}` | (NonNullable<T[K]> extends Plain ? never : PathsOf<NonNullable<T[K]>, `${Prefix}${K}.`>);
}[keyof T & string];
type Plain = string | number | boolean | readonly unknown[] | ((...args: never[]) => unknown) | NodeJS.ReadableStream;

export interface FlagSpec<T> {
  /** One-letter alias, e.g. `c` for `-c`. */
  readonly short?: string;
  /** How the value is read; absent for a switch. */
  readonly kind?: ValueKind<T>;
  /** A switch that turns something off: `--no-{name}`. */
  readonly negate?: boolean;
  readonly help: string;
  /** Where the value lands in the options. */
  readonly to?: OptionPath;
  /** The option's value, when it is not the flag's own. */
  readonly as?: (value: T) => unknown;
  /** The value a command reads for a flag that lands nowhere, when it was not given. */
  readonly fallback?: T;
  /** What `--help` shows as the default, when it is not one value of the options ('' for nothing). */
  readonly defaultText?: string;
  readonly commands: readonly CommandName[];
  /** Commands that need it given. */
  readonly required?: readonly CommandName[];
  /** Help worded for one command. */
  readonly helpFor?: Partial<Record<CommandName, string>>;
  /** Why a command that does not take it refuses it (the worker refuses the input flags). */
  readonly refusal?: string;
  readonly section: Section;
  /** Listed in the README's table of the flags most people need. */
  readonly common?: boolean;
}

function flag<T = boolean>(spec: FlagSpec<T> & { readonly fallback: T }): FlagSpec<T> & { readonly fallback: T };
function flag<T = boolean>(spec: FlagSpec<T>): FlagSpec<T>;
function flag<T>(spec: FlagSpec<T>): FlagSpec<T> {
  return spec;
}

const RUN = ['run', 'worker'] as const;
const INPUT = ['run', 'enqueue'] as const;
const QUEUE = ['enqueue', 'worker', 'finalize', 'status', 'report'] as const;

export const FLAGS = {
  // Input
  input: flag({
    short: 'i', kind: several('file|url'), to: 'input.paths', commands: INPUT, required: ['enqueue'], section: 'Input', common: true, defaultText: 'standard input',
    help: 'rows to read: .parquet, .csv, .tsv, .txt (a URL a line) or NDJSON (also .gz, .zst), files, globs (quoted: "shards/*.parquet"), http(s) URLs or hf://datasets/OWNER/NAME/PATH, read one after another',
    helpFor: { enqueue: 'rows to split into jobs: .parquet, .csv, .tsv, .txt or NDJSON, a path every worker can read, an http(s) URL or hf://datasets/OWNER/NAME/PATH' },
  }),
  rows: flag({ kind: rowRange, to: 'input.rows', commands: ['run'], section: 'Input', common: true, defaultText: 'all', help: 'read only these rows, 1-based and inclusive (NDJSON and .txt lines, CSV and TSV records, Parquet rows), e.g. 1001-2000 or 1001-' }),
  sample: flag({
    kind: fraction, to: 'input.sample.fraction', commands: RUN, section: 'Input', defaultText: 'every row',
    help: 'keep this share of the rows, e.g. 0.01: the same rows on every run and worker, chosen by a hash of the id and --seed; the others are left out of the run (not counted)',
  }),
  seed: flag({ kind: integer, to: 'input.sample.seed', commands: RUN, section: 'Input', defaultText: '0', help: 'which rows --sample keeps: another seed, another draw' }),
  inputFormat: flag({ kind: choice(INPUT_FORMATS, 'format'), to: 'input.format', commands: INPUT, section: 'Input', defaultText: 'from the file name, else ndjson', help: 'input format' }),
  idColumn: flag({ kind: text('name'), to: 'input.columns.id', commands: INPUT, section: 'Input', help: "column holding the sample id; a CSV or Parquet input without it takes row positions as ids ('' does so for NDJSON)" }),
  urlColumn: flag({ kind: text('name'), to: 'input.columns.url', commands: INPUT, section: 'Input', help: 'column holding the image URL' }),
  captionColumn: flag({ kind: text('name'), to: 'input.columns.caption', commands: INPUT, section: 'Input', help: 'column holding the caption' }),
  fallbackCaptionColumn: flag({ kind: text('name'), to: 'input.columns.fallbackCaption', commands: INPUT, section: 'Input', help: 'caption used when the caption is null or empty (a list is joined with ", ")' }),
  missingCaptions: flag({
    kind: choice(MISSING_CAPTIONS, 'what'), to: 'input.missingCaptions', commands: RUN, section: 'Input',
    help: 'a row with no caption text in either column: fail it (no_caption, no request) or keep its image uncaptioned (no .txt, a null caption; no SimpleTuner config until every sample has one)',
  }),
  widthColumn: flag({ kind: text('name'), to: 'input.columns.width', commands: INPUT, section: 'Input', help: 'column holding the original width (optional)' }),
  heightColumn: flag({ kind: text('name'), to: 'input.columns.height', commands: INPUT, section: 'Input', help: 'column holding the original height (optional)' }),
  verifyHashColumn: flag({ kind: text('name'), to: 'input.columns.hash', commands: INPUT, section: 'Input', defaultText: 'no check', help: "column holding each image's hash (hex, in the --hash algorithm, a sha256: style prefix allowed): a sample whose fetched bytes differ fails as hash_mismatch" }),
  hash: flag({ kind: choice(HASH_ALGORITHMS, 'algorithm'), to: 'input.columns.hashAlgorithm', commands: INPUT, section: 'Input', help: "the algorithm of --verify-hash-column's hashes (img2dataset's three); original_sha256 in the metadata stays a sha256" }),
  maxRowBytes: flag({
    kind: byteSize, to: 'input.maxRowBytes', commands: RUN, section: 'Input',
    help: 'the longest input row (an NDJSON line, a CSV record, a Parquet row\'s cells): a longer one fails as bad_row without being held in memory whole',
  }),
  keepColumns: flag({
    kind: { ...list, placeholder: 'names', parse: (value: string) => (value.trim() === 'all' ? ['all'] : list.parse(value)) },
    to: 'input.keep', as: (names: string[]) => (names.length === 1 && names[0] === 'all' ? 'all' : names), commands: RUN, section: 'Input', defaultText: 'none',
    help: "carry these input columns (comma-separated) or 'all' (Parquet) into metadata.parquet, the WebDataset .json and the Parquet shards, with their Parquet types",
  }),
  rowsPerJob: flag({ kind: integer, fallback: 1000, commands: ['enqueue'], section: 'Queue', help: 'rows per job: a killed worker costs at most one job of rework' }),

  // Fetching
  concurrency: flag({ short: 'c', kind: integer, to: 'fetch.concurrency', commands: RUN, section: 'Fetching', common: true, help: 'requests in flight at once, all hosts together' }),
  perHostConcurrency: flag({ kind: integer, to: 'fetch.perHostConcurrency', commands: RUN, section: 'Fetching', common: true, help: 'most requests in flight to one host; halved on 429 or 503, recovers slowly (AIMD)' }),
  rate: flag({ kind: positiveDecimal, to: 'fetch.ratePerSecond', commands: RUN, section: 'Fetching', common: true, defaultText: 'no ceiling', help: 'most requests started per second per host, a hard ceiling over the pace that adapts to 429 and 503' }),
  timeout: flag({
    kind: seconds, to: 'fetch.timeoutMs', commands: [...RUN, 'enqueue'], section: 'Fetching', help: 'total deadline for one attempt, queueing for a connection included',
    helpFor: { enqueue: 'deadline for each request when the input is a URL' },
  }),
  connectTimeout: flag({ kind: seconds, to: 'fetch.connectTimeoutMs', commands: RUN, section: 'Fetching', help: 'deadline for opening a connection' }),
  headersTimeout: flag({ kind: seconds, to: 'fetch.headersTimeoutMs', commands: RUN, section: 'Fetching', help: 'deadline for the response headers' }),
  idleTimeout: flag({ kind: seconds, to: 'fetch.idleTimeoutMs', commands: RUN, section: 'Fetching', help: 'longest pause allowed inside a response body' }),
  maxBytes: flag({ kind: byteSize, to: 'fetch.maxBytes', commands: RUN, section: 'Fetching', help: 'largest body accepted (1048576, 64MiB, 10MB); enforced while it streams' }),
  retries: flag({ kind: integer, to: 'fetch.retries', commands: RUN, section: 'Fetching', help: 'extra attempts after a timeout, reset, 5xx or short body' }),
  patience: flag({ kind: seconds, to: 'fetch.patienceMs', commands: RUN, section: 'Fetching', help: 'how long a sample may keep being told to wait (429, 503) before it fails; waiting spends no --retries' }),
  retryDelay: flag({ kind: seconds, to: 'fetch.retryDelayMs', commands: RUN, section: 'Fetching', help: 'first backoff before a retry, doubled each time, with jitter; never shorter than Retry-After' }),
  proxy: flag({ kind: text('url'), to: 'fetch.proxy', commands: RUN, section: 'Fetching', defaultText: 'HTTPS_PROXY / HTTP_PROXY, minus NO_PROXY, when set', help: 'fetch images (and an --input URL) through this HTTP proxy' }),
  insecure: flag({ to: 'fetch.insecure', commands: RUN, section: 'Fetching', help: 'accept any TLS certificate (hosts with broken chains); anyone on the path could then change the images' }),
  http2: flag({ to: 'fetch.http2', commands: RUN, section: 'Fetching', help: 'offer HTTP/2 to HTTPS hosts (HTTP/1.1 keep-alive is the default: faster, see docs/reference.md)' }),
  allowLocalFiles: flag({
    to: 'fetch.allowLocalFiles', commands: RUN, section: 'Fetching',
    help: "read image URLs that are local paths or file:// URLs from this machine's disk (a relative path from the input file's folder); without it they fail bad_url, so a dataset from the internet cannot read your files",
  }),
  publicAddressesOnly: flag({
    to: 'fetch.publicAddressesOnly', commands: RUN, section: 'Fetching',
    help: 'also refuse image URLs and redirects that lead to loopback, private (10/8, 172.16/12, 192.168/16), CGNAT or unique-local addresses, for a cloud machine fetching a dataset from the internet; link-local (cloud metadata), unspecified and multicast addresses are always refused (blocked_address)',
  }),
  userAgent: flag({ kind: text('text'), to: 'fetch.userAgent', commands: RUN, section: 'Fetching', common: true, help: 'User-Agent header; add a way to reach you, e.g. "photo-concept-pipeline/0.1.0 (+mailto:you@example.org)"' }),
  disallowedRobotsTags: flag({ kind: { ...list, placeholder: 'tags' }, to: 'fetch.disallowedRobotsTags', commands: RUN, section: 'Fetching', help: "X-Robots-Tag directives that opt an image out, comma-separated (img2dataset's default); noai,noimageai refuses only the training opt-outs, '' none" }),
  ignoreRobotsTag: flag({ to: 'fetch.respectRobotsTag', as: () => false, commands: RUN, section: 'Fetching', help: 'fetch images whatever their X-Robots-Tag says' }),
  cdnResize: flag({ to: 'fetch.cdnResizeHosts', as: () => IMGIX_STYLE_HOSTS, commands: RUN, section: 'Fetching', common: true, help: `ask imgix-style CDNs (${IMGIX_STYLE_HOSTS.join(', ')}) for an image scaled near the target: less bandwidth, the CDN's resampling` }),
  cdnResizeHosts: flag({ kind: { ...list, placeholder: 'hosts' }, to: 'fetch.cdnResizeHosts', commands: RUN, section: 'Fetching', defaultText: '', help: 'hosts --cdn-resize applies to, comma-separated (implies --cdn-resize)' }),

  // Images
  resize: flag({
    kind: choice(RESIZE_MODES, 'mode'), to: 'image.resize', commands: RUN, section: 'Images', common: true,
    help: 'shortest: shorter side to --resolution (the reference rule); area: about --megapixels; longest: longer side to --resolution; center-crop: a --resolution square; none: as fetched',
  }),
  resolution: flag({ short: 'r', kind: integer, to: 'image.resolution', commands: RUN, section: 'Images', common: true, help: 'target side for shortest, longest and center-crop' }),
  megapixels: flag({ kind: decimal, to: 'image.megapixels', commands: RUN, section: 'Images', help: 'target area for --resize area, e.g. 1.25' }),
  round: flag({ kind: integer, to: 'image.round', commands: RUN, section: 'Images', help: 'round each side to the nearest multiple of this; 1 keeps sizes exact' }),
  upscale: flag({ negate: true, to: 'image.upscale', commands: RUN, section: 'Images', help: 'keep images smaller than the target at their size' }),
  skipSmall: flag({ to: 'image.skipSmall', commands: RUN, section: 'Images', help: 'with --no-upscale, skip images smaller than the target instead (reason filtered_size)' }),
  minMegapixels: flag({ kind: decimal, to: 'image.minMegapixels', commands: RUN, section: 'Images', defaultText: 'off', help: 'skip smaller images: before the fetch from the width and height columns, after it from the real size' }),
  minSide: flag({ kind: { ...integer, placeholder: 'px' }, to: 'image.minSide', commands: RUN, section: 'Images', defaultText: 'off', help: 'skip images whose shorter side is smaller' }),
  maxAspect: flag({ kind: { ...decimal, placeholder: 'ratio' }, to: 'image.maxAspect', commands: RUN, section: 'Images', defaultText: 'off', help: 'skip images whose long side / short side is larger, e.g. 3' }),
  format: flag({
    short: 'f', kind: choice(['png', 'jpeg', 'webp', 'original'] as const, 'format'), to: 'image.format', commands: RUN, section: 'Images', common: true, defaultText: 'png; original with --resize none',
    help: 'output format; original (with --resize none) keeps the fetched bytes',
  }),
  quality: flag({ short: 'q', kind: integer, to: 'image.quality', commands: RUN, section: 'Images', defaultText: 'jpeg 95, webp 90', help: 'jpeg or webp quality, 1-100' }),
  lossless: flag({ to: 'image.lossless', commands: RUN, section: 'Images', help: 'lossless webp' }),
  keepAlpha: flag({ to: 'image.keepAlpha', commands: RUN, section: 'Images', help: 'keep transparency (png, webp) instead of flattening onto white' }),
  pngCompression: flag({ kind: { ...integer, placeholder: 'level' }, to: 'image.pngCompressionLevel', commands: RUN, section: 'Images', help: 'png zlib level, 0 fastest to 9 smallest' }),
  pngFilter: flag({ kind: choice(PNG_FILTERS, 'filter'), to: 'image.pngFilter', commands: RUN, section: 'Images', help: 'png row filters: adaptive (small files, like PIL) or none (faster, about 55% larger)' }),
  chromaSubsampling: flag({ kind: choice(CHROMA_SUBSAMPLINGS, 'ratio'), to: 'image.chromaSubsampling', commands: RUN, section: 'Images', help: 'jpeg chroma: 4:2:0 (like PIL and OpenCV) or 4:4:4 (full colour resolution, files about 30% larger)' }),
  maxPixels: flag({ kind: integer, to: 'image.maxPixels', commands: RUN, section: 'Images', help: 'refuse images with more pixels than this, read from the header before decoding' }),
  imageConcurrency: flag({ kind: integer, to: 'image.concurrency', commands: RUN, section: 'Images', defaultText: 'number of cores', help: 'images decoded at once' }),

  // Output
  output: flag({
    short: 'o', kind: text('dir'), to: 'output', commands: [...RUN, 'finalize', 'status', 'report'], required: [...RUN, 'finalize', 'report'], section: 'Output', common: true, defaultText: '',
    help: 'folder to write the dataset into (created if missing)',
    helpFor: { finalize: 'the output folder the workers wrote', status: 'the output folder of earlier runs', report: 'the output folder to report on' },
  }),
  sink: flag({ kind: text('name|module'), to: 'sink', commands: RUN, section: 'Output', common: true, help: 'where samples go: dir (SimpleTuner folder), webdataset (tar shards), parquet (shards), null, or a sink module path or package' }),
  samplesPerShard: flag({ kind: integer, to: 'samplesPerShard', commands: RUN, section: 'Output', help: 'samples per shard for webdataset and parquet' }),
  layout: flag({
    kind: choice(LAYOUTS, 'layout'), to: 'layout', commands: RUN, section: 'Output',
    help: "webdataset and parquet sinks: native, or img2dataset (its shard and sample key names, .json fields, per-shard .parquet and _stats.json, so tools written for img2dataset's output read it; see docs/sinks.md)",
  }),
  dataloaderRoot: flag({
    kind: text('path'), to: 'dataloaderRoot', commands: [...RUN, 'finalize'], section: 'Output', common: true, defaultText: 'the output folder',
    help: 'dir sink: absolute path the output folder will have where SimpleTuner reads it, for simpletuner-dataloader.json',
  }),
  subfolders: flag({ kind: integer, to: 'subfolders', commands: RUN, section: 'Output', common: true, help: 'dir sink: spread files over N folders (000 to N-1, by a hash of the id) so none holds a million; 0 keeps one flat folder' }),
  metadataEvery: flag({ kind: seconds, to: 'metadataEveryMs', commands: RUN, section: 'Output', help: 'dir sink: refresh metadata.parquet and the dataloader config this often during a run (the first time after 30 s at the latest), 0 for only at the end' }),

  // Reports and progress
  results: flag({ kind: text('file'), to: 'report.resultsPath', commands: RUN, section: 'Reports and progress', common: true, defaultText: '', help: 'write one NDJSON line per row: id, url, status, reason, detail, attempts, size, hashes' }),
  summary: flag({ kind: text('file'), to: 'report.summaryPath', commands: RUN, section: 'Reports and progress', common: true, defaultText: '', help: 'write the run summary as JSON' }),
  metricsFile: flag({ kind: text('file'), to: 'report.metricsPath', commands: RUN, section: 'Reports and progress', common: true, defaultText: '', help: 'Prometheus text-format counters, rewritten every 5 s (node_exporter textfile collector)' }),
  quiet: flag({ to: 'report.quiet', commands: RUN, section: 'Reports and progress', help: 'print only errors and the final summary' }),
  logEvery: flag({ kind: seconds, to: 'report.logEveryMs', commands: RUN, section: 'Reports and progress', help: 'seconds between plain progress lines when not on a terminal, 0 for none' }),
  progress: flag({ negate: true, to: 'report.progressBar', commands: RUN, section: 'Reports and progress', help: 'plain progress lines even on a terminal' }),

  // Resume and shutdown
  resume: flag({
    negate: true, to: 'resume.enabled', commands: ['run'], section: 'Resume and shutdown', help: 'keep no state: fetch every row, even ones saved by an earlier run',
    refusal: 'a worker always keeps the shared resume state: it is what makes a taken-over job skip stored samples',
  }),
  maxAttempts: flag({
    kind: integer, to: 'resume.maxAttempts', commands: [...RUN, 'status'], section: 'Resume and shutdown', help: 'runs in which a transiently failing sample is tried, in total',
    helpFor: { status: 'as given to the runs, to count pending retries' },
  }),
  retryFailed: flag({ to: 'resume.retryFailed', commands: RUN, section: 'Resume and shutdown', common: true, help: 'try every failed sample once more, permanent failures included' }),
  dedupe: flag({
    kind: choiceList(DEDUPE_KEYS, 'what'), to: 'resume.dedupe', commands: RUN, section: 'Resume and shutdown', defaultText: 'off',
    help: 'url, content or url,content. url: skip a row whose URL was already saved under another id (duplicate_url), before the fetch; content: skip a row whose fetched bytes were (duplicate_content), before the decode. A row in flight with the same URL or bytes as another waits for its outcome',
  }),
  grace: flag({ kind: seconds, to: 'graceMs', commands: RUN, section: 'Resume and shutdown', help: 'after SIGINT or SIGTERM, time for rows in flight to finish' }),

  // Queue
  redis: flag({
    kind: text('url'), commands: QUEUE, required: ['enqueue', 'worker', 'finalize'], section: 'Queue', help: 'the Redis server the queue lives in, e.g. redis://queue-host:6379',
    helpFor: { status: "a queue's Redis server (with --queue): jobs, samples, workers", report: "a queue's Redis server (with --queue): report on its shared state" },
  }),
  queue: flag({ kind: text('name'), commands: QUEUE, required: ['enqueue', 'worker', 'finalize'], section: 'Queue', help: 'the queue name (one queue per input and output)' }),
  jobLock: flag({ kind: seconds, fallback: 30_000, commands: ['worker'], section: 'Queue', help: 'how long a job stays with a worker that stopped answering (killed, cut off) before another takes it' }),
  maxJobs: flag({ kind: integer, commands: ['worker'], section: 'Queue', defaultText: 'no limit', help: 'leave after this many jobs' }),
  exitWhenDrained: flag({ commands: ['worker'], section: 'Queue', help: 'leave when no job is left waiting or running (otherwise wait for more)' }),
  force: flag({ commands: ['finalize'], section: 'Queue', help: 'go on while jobs are still waiting or running (their samples are left out)' }),

  // Status and report
  json: flag({ commands: ['status'], section: 'Status and report', help: 'print JSON' }),
  report: flag({ kind: text('file'), commands: ['report'], section: 'Status and report', defaultText: 'DIR/report.html', help: 'where to write the report page' }),
  batchSize: flag({ kind: integer, fallback: 4, commands: ['report'], section: 'Status and report', help: "the trainer's batch size: aspect buckets with fewer images are flagged" }),
  thumbnails: flag({ kind: integer, fallback: 200, commands: ['report'], section: 'Status and report', help: 'images on the contact sheet, at most (0 for none)' }),
} as const satisfies Record<string, FlagSpec<any>>;

export type FlagName = keyof typeof FLAGS;
type ValueOf<S> = S extends FlagSpec<infer T> ? T : never;
/** The flags a command was given (only those), typed from the table. */
export type Flags = { -readonly [K in FlagName]?: ValueOf<(typeof FLAGS)[K]> };

/** The flags of a command, in the table's order. */
export function flagsOf(command: CommandName): FlagName[] {
  return (Object.keys(FLAGS) as FlagName[]).filter((name) => (FLAGS[name] as FlagSpec<unknown>).commands.includes(command));
}

/** `perHostConcurrency` -> `--per-host-concurrency`; `upscale` with `negate` -> `--no-upscale`. */
export function longFlag(name: FlagName): string {
  const kebab = name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  return `--${(FLAGS[name] as FlagSpec<unknown>).negate ? 'no-' : ''}${kebab}`;
}
