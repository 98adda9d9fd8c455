/**
 * The report's charts as Vega-Lite specs, one function each, from the counted data.
 * A chart with nothing to draw is `undefined` (the page says so in words instead of
 * drawing empty axes). Bars carry their number as a text label, because the page has no
 * script for hover tooltips and a reader should not have to measure bars against an axis.
 */
import type { AspectBucket, Bin, FailureGroup, HostSummary, ImageSummary, Timeline } from './data.js';
import { formatCount, formatShare } from './format.js';
import { COLORS, type ChartSpec } from './vega-svg.js';

const WIDE = 640;
const NARROW = 300;
/** Height of one bar in the horizontal bar charts. */
const BAR_STEP = 18;
/**
 * Bars in the order of each value's `rank` field, which each chart sets as it sorts: the
 * order is data, never an expression made from the dataset's names. (`min`: the one
 * aggregate Vega-Lite can merge across the layers of bars and labels.)
 */
const BY_RANK = { field: 'rank', op: 'min', order: 'ascending' } as const;

/** Saved and failed rows per minute or hour, one line each. */
export function timelineChart(timeline: Timeline): ChartSpec | undefined {
  if (timeline.points.length === 0) return undefined;
  const values = timeline.points.flatMap(({ at, saved, failed }) => [
    { at: Date.parse(at), outcome: 'saved', rows: saved },
    { at: Date.parse(at), outcome: 'failed', rows: failed },
  ]);
  return {
    description: `Saved and failed rows per ${timeline.unit}`,
    width: WIDE,
    height: 220,
    data: { values },
    // Straight segments: a day by the minute is more points than the chart has pixels, and a
    // curve through each would triple the path for nothing.
    mark: { type: 'line', point: timeline.points.length <= 60 },
    encoding: {
      // A UTC scale: the axis reads the same wherever the report is made or opened.
      x: {
        field: 'at',
        type: 'temporal',
        scale: { type: 'utc' },
        title: `time (UTC), per ${timeline.unit}`,
        axis: { format: timeline.unit === 'minute' ? '%H:%M' : '%b %d %H:00', labelOverlap: true },
      },
      y: { field: 'rows', type: 'quantitative', title: `rows per ${timeline.unit}` },
      color: partColor('outcome', ['saved', 'failed']),
    },
  };
}

/** Failed rows by reason, most first. */
export function failuresChart(failures: readonly FailureGroup[]): ChartSpec | undefined {
  if (failures.length === 0) return undefined;
  const total = failures.reduce((sum, { count }) => sum + count, 0);
  const values = [...failures]
    .sort((a, b) => b.count - a.count)
    .map(({ reason, count }, rank) => ({ rank, reason, count, label: `${formatCount(count)} (${formatShare(count, total)})` }));
  return labelledBars({
    description: 'Failed rows by reason',
    values,
    category: { field: 'reason', title: null },
    measure: { field: 'count', title: 'failed rows' },
    color: COLORS.failed,
  });
}

/** The busiest hosts: rows as a bar split into failed and not failed, the failure rate beside it. */
export function hostsChart(hosts: HostSummary): ChartSpec | undefined {
  if (hosts.busiest.length === 0) return undefined;
  const values = hosts.busiest.flatMap(({ host, rows, failed }, rank) => [
    { host, rank, part: 'not failed', rows: Math.max(0, rows - failed), total: rows, label: '' },
    { host, rank, part: 'failed', rows: failed, total: rows, label: `${formatCount(rows)}, ${formatShare(failed, rows)} failed` },
  ]);
  return {
    description: 'Rows per host, busiest first, with the share that failed',
    width: WIDE - 160,
    height: { step: BAR_STEP },
    data: { values },
    // In the order given (busiest first), not by name.
    encoding: { y: { field: 'host', type: 'nominal', title: null, sort: BY_RANK } },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'rows', type: 'quantitative', stack: 'zero', title: 'rows' },
          color: partColor('part', ['not failed', 'failed']),
          order: { field: 'part', sort: 'descending' },
        },
      },
      {
        transform: [{ filter: { field: 'part', equal: 'failed' } }],
        mark: { type: 'text', align: 'left', dx: 4, aria: false },
        encoding: { x: { field: 'total', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  };
}

/** The stored images' shorter and longer sides, side by side (a side with no bins is left out). */
export function storedSidesChart(sides: ImageSummary['storedSides']): ChartSpec | undefined {
  const drawn = [
    { bins: sides.shorter, title: 'shorter side (px)' },
    { bins: sides.longer, title: 'longer side (px)' },
  ].filter(({ bins }) => bins.length > 0);
  if (drawn.length === 0) return undefined;
  return {
    description: 'Stored image sides in pixels',
    hconcat: drawn.map(({ bins, title }) => histogramLayer(bins, title, 'images', NARROW)),
  };
}

export function megapixelsChart(bins: readonly Bin[]): ChartSpec | undefined {
  if (bins.length === 0) return undefined;
  return { description: 'Original image size in megapixels', ...histogramLayer(bins, 'original size (megapixels)', 'images', WIDE) };
}

export function captionWordsChart(bins: readonly Bin[]): ChartSpec | undefined {
  if (bins.length === 0) return undefined;
  return { description: 'Words per caption', ...histogramLayer(bins, 'words per caption', 'captions', WIDE) };
}

/**
 * Images per aspect bucket, narrowest first. The buckets below the batch size are the
 * point of the chart, and they are the small ones: on a linear axis a bucket of 3 next to
 * one of 300,000 has no width at all. So the axis is logarithmic (symlog, so that 1 is not
 * its zero), and those buckets' bars and numbers are in the warning colour.
 */
export function bucketsChart(buckets: readonly AspectBucket[], batchSize: number): ChartSpec | undefined {
  if (buckets.length === 0) return undefined;
  const below = `below the batch size (${batchSize})`;
  const values = [...buckets]
    .sort((a, b) => a.aspect - b.aspect)
    .map(({ label: bucket, count, belowBatch }, rank) => ({ rank, bucket, count, status: belowBatch ? below : 'trained', label: formatCount(count) }));
  return labelledBars({
    description: 'Stored images per aspect-ratio bucket',
    values,
    category: { field: 'bucket', title: 'bucket' },
    measure: { field: 'count', title: 'images (logarithmic axis)', logarithmic: true },
    colorBy: { field: 'status', domain: ['trained', below], range: [COLORS.saved, COLORS.warning] },
  });
}

interface BarsOptions {
  readonly description: string;
  readonly values: Array<Record<string, string | number>>;
  /** The bars' names; the bars stand in the order of the values' `rank`. */
  readonly category: { field: string; title: string | null };
  readonly measure: { field: string; title: string; logarithmic?: boolean };
  /** One colour for every bar, or a colour per value of a field (bars and their numbers alike). */
  readonly color?: string;
  readonly colorBy?: { field: string; domain: string[]; range: string[] };
}

/** Horizontal bars with their number written at the end of each. */
function labelledBars(options: BarsOptions): ChartSpec {
  const { category, measure } = options;
  const color = options.colorBy
    ? { color: { field: options.colorBy.field, type: 'nominal', title: null, scale: { domain: options.colorBy.domain, range: options.colorBy.range } } as const }
    : {};
  const largest = Math.max(...options.values.map((value) => Number(value[measure.field])));
  const scale = measure.logarithmic ? { scale: { type: 'symlog' }, axis: { values: powersOfTen(largest), format: ',d' } } as const : {};
  return {
    description: options.description,
    width: WIDE - 160,
    height: { step: BAR_STEP },
    data: { values: options.values },
    encoding: {
      y: { field: category.field, type: 'nominal', title: category.title, sort: BY_RANK },
      x: { field: measure.field, type: 'quantitative', title: measure.title, ...scale },
      ...color,
    },
    layer: [
      { mark: { type: 'bar', ...(options.color ? { color: options.color } : {}) } },
      { mark: { type: 'text', align: 'left', dx: 4, aria: false }, encoding: { text: { field: 'label' } } },
    ],
  };
}

/** 0, 1, 10, 100, ... up to the first power of ten at or above `largest`: the ticks of a logarithmic axis. */
function powersOfTen(largest: number): number[] {
  const ticks = [0, 1];
  while ((ticks.at(-1) ?? 1) < largest) ticks.push((ticks.at(-1) ?? 1) * 10);
  return ticks;
}

/** Bars between each bin's bounds, on an axis to scale. */
function histogramLayer(bins: readonly Bin[], xTitle: string, yTitle: string, width: number) {
  return {
    width,
    height: 180,
    data: { values: bins.map(({ from, to, count }) => ({ from, to, count })) },
    mark: { type: 'bar', color: COLORS.saved, binSpacing: 1 },
    encoding: {
      x: { field: 'from', type: 'quantitative', bin: { binned: true }, title: xTitle },
      x2: { field: 'to' },
      y: { field: 'count', type: 'quantitative', title: yTitle },
    },
  } as const;
}

/** Failed in red, everything else in blue, whatever the chart calls its parts. */
function partColor(field: string, domain: string[]) {
  const range = domain.map((part) => (part === 'failed' ? COLORS.failed : COLORS.saved));
  return { field, type: 'nominal', title: null, scale: { domain, range } } as const;
}
