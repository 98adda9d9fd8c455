/**
 * A Vega-Lite chart as an SVG string, made in Node with no browser, canvas or DOM:
 * Vega-Lite compiles the chart to a Vega spec, and a headless Vega view (renderer
 * 'none') writes its scene graph as SVG markup. Vega escapes every text and attribute
 * it writes, so labels taken from the dataset (host names, reasons) arrive as text.
 *
 * The SVG carries presentation attributes only (fill, stroke, font-size), no `style`
 * attribute, no script and no link, so the page's Content-Security-Policy needs nothing
 * for it. (Vega writes a `style` attribute only for blend modes and unsmoothed images,
 * which these charts do not use; the browser test would see the CSP refuse one.)
 */
import { View, parse, type LoggerInterface } from 'vega';
import { compile, type Config, type TopLevelSpec } from 'vega-lite';

export type ChartSpec = TopLevelSpec;

export const COLORS = {
  saved: '#4c78a8',
  failed: '#e45756',
  warning: '#f58518',
  neutral: '#72b7b2',
} as const;

const CONFIG: Config = {
  background: '#ffffff',
  // Short, because Vega writes it on every text element; the page's style sheet gives the charts its own font.
  font: 'sans-serif',
  view: { stroke: null },
  axis: {
    labelColor: '#333333',
    titleColor: '#333333',
    titleFontWeight: 'normal',
    titleFontSize: 12,
    labelFontSize: 11,
    gridColor: '#eeeeee',
    domainColor: '#999999',
    tickColor: '#999999',
    labelLimit: 240,
  },
  legend: { labelLimit: 320, labelColor: '#333333', titleColor: '#333333', labelFontSize: 11, titleFontWeight: 'normal', orient: 'top' },
  title: { anchor: 'start', fontSize: 12, fontWeight: 'normal', color: '#333333' },
  text: { fontSize: 11, color: '#333333' },
};

export async function chartSvg(spec: ChartSpec): Promise<string> {
  const { spec: vegaSpec } = compile(spec, { config: CONFIG, logger: STRICT });
  const view = new View(parse(vegaSpec), { renderer: 'none', logger: STRICT });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const WARN_LEVEL = 2;
/**
 * Vega's warnings (a field it cannot find, an encoding it drops, an empty extent) mean a
 * chart is drawn other than intended: thrown, so the tests find them, rather than printed
 * on the user's terminal at report time. (The chart functions leave out what has no data,
 * the one warning data alone could cause.)
 */
const STRICT: LoggerInterface = {
  // Asked, it says Warn (2 in vega-util's levels): everything from warnings up reaches it.
  level(set?: number) {
    return set === undefined ? WARN_LEVEL : STRICT;
  },
  error(...args: unknown[]) {
    throw new Error(`chart: ${args.join(' ')}`);
  },
  warn(...args: unknown[]) {
    throw new Error(`chart: ${args.join(' ')}`);
  },
  info() {
    return STRICT;
  },
  debug() {
    return STRICT;
  },
};
