/**
 * `renderReport`: the whole report as one HTML document, from counted data.
 *
 * The page is self-contained and inert. Its charts are inline SVG made here (see
 * vega-svg.ts), its thumbnails `data:` URIs, its style one inline `<style>`; it has no
 * script at all. A Content-Security-Policy in the page says so to the browser: nothing
 * may be loaded from anywhere (`default-src 'none'`), images only from `data:`, styles
 * only the one style sheet whose SHA-256 the policy names, scripts never. So a caption
 * that slipped through as markup still could not run or fetch anything; and none does
 * slip through, since every string from the dataset enters the page through the `html`
 * template, which escapes it.
 */
import { createHash } from 'node:crypto';
import { FAILURE_REASONS } from '../../reasons.js';
import { bucketsChart, captionWordsChart, failuresChart, hostsChart, megapixelsChart, storedSidesChart, timelineChart } from './charts.js';
import type { FailureGroup, HostSummary, ImageSummary, ReportData, ReportTotals, SkipGroup, Thumbnail } from './data.js';
import { formatBytes, formatCount, formatDecimal, formatDuration, formatShare, formatTime } from './format.js';
import { html, markupOf, trustedHtml, type Html } from './html.js';
import { STYLES } from './styles.js';
import { chartSvg, type ChartSpec } from './vega-svg.js';

export type { ReportData } from './data.js';

export async function renderReport(data: ReportData): Promise<string> {
  const charts = await drawCharts({
    timeline: timelineChart(data.timeline),
    failures: failuresChart(data.failures),
    hosts: hostsChart(data.hosts),
    storedSides: storedSidesChart(data.images.storedSides),
    megapixels: megapixelsChart(data.images.originalMegapixels),
    buckets: bucketsChart(data.images.buckets, data.images.batchSize),
    captionWords: captionWordsChart(data.captions.words),
  });
  const figure = (name: keyof typeof charts, caption: string, empty: string) => chartFigure(name, charts[name], caption, empty);

  const body = html`
<header>
  <h1>Dataset report</h1>
  <p class="subtitle">${data.title} · ${data.sink} sink · made ${formatTime(data.generatedAt)}</p>
  <nav aria-label="Sections">
    <a href="#totals">Totals</a><a href="#time">Over time</a><a href="#failures">Failures</a><a href="#hosts">Hosts</a><a href="#images">Images</a><a href="#captions">Captions</a><a href="#contact-sheet">Contact sheet</a>
  </nav>
</header>
<main>
${missingBox(data.missing)}
<section id="totals">
  <h2>Totals</h2>
  ${totalsList(data.totals)}
</section>
<section id="time">
  <h2>Over time</h2>
  ${figure('timeline', timelineCaption(data.timeline), 'No time was recorded for the outcomes.')}
</section>
<section id="failures">
  <h2>Failures</h2>
  ${failuresSection(data.failures, data.totals, figure('failures', 'Failed rows by reason.', ''))}
  ${skipsSection(data.skips)}
</section>
<section id="hosts">
  <h2>Hosts</h2>
  ${hostsSection(data.hosts, figure('hosts', 'Rows per host (busiest first); the red part failed.', ''))}
</section>
<section id="images">
  <h2>Images</h2>
  <h3>Stored sizes</h3>
  ${figure('storedSides', 'The stored images’ sides, in pixels.', 'No stored image sizes were recorded.')}
  <h3>Originals</h3>
  ${figure('megapixels', 'The originals’ size, in megapixels.', 'No original sizes were recorded.')}
  ${bucketsSection(data.images, figure('buckets', 'Stored images per aspect-ratio bucket; buckets below the batch size in orange.', 'No aspect-ratio buckets: no stored image sizes were recorded.'))}
</section>
<section id="captions">
  <h2>Captions</h2>
  ${captionsSummary(data.captions)}
  ${figure('captionWords', 'Words per caption.', 'No caption lengths were recorded.')}
</section>
<section id="contact-sheet">
  <h2>Contact sheet</h2>
  ${contactSheet(data.thumbnails, data.totals.saved)}
</section>
</main>
<footer>
  <p>Made by photo-concept-pipeline. This page is one file: it loads nothing from anywhere and runs no script.</p>
</footer>`;
  return documentAround(`Dataset report: ${data.title}`, body);
}

/**
 * The document: charset first (a browser reads it from the first 1024 bytes), then the
 * policy, before anything the policy is about.
 */
function documentAround(title: string, body: Html): string {
  const styleHash = createHash('sha256').update(STYLES).digest('base64');
  const policy = [
    "default-src 'none'",
    'img-src data:',
    `style-src 'sha256-${styleHash}'`,
    "script-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  // The policy is this program's own text, kept readable in the page's source (its quotes unescaped).
  // The icon is a data: URI, so a browser that opens the page over HTTP does not ask for /favicon.ico.
  return markupOf(html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${trustedHtml(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="icon" href="data:,">
<style>${trustedHtml(STYLES)}</style>
</head>
<body>${body}
</body>
</html>
`);
}

type ChartName = 'timeline' | 'failures' | 'hosts' | 'storedSides' | 'megapixels' | 'buckets' | 'captionWords';

async function drawCharts(specs: Record<ChartName, ChartSpec | undefined>): Promise<Record<ChartName, Html | undefined>> {
  const entries = await Promise.all(
    Object.entries(specs).map(async ([name, spec]) => [name, spec === undefined ? undefined : trustedHtml(await chartSvg(spec))] as const),
  );
  return Object.fromEntries(entries) as Record<ChartName, Html | undefined>;
}

function chartFigure(name: ChartName, svg: Html | undefined, caption: string, empty: string): Html {
  if (svg === undefined) return empty === '' ? html`` : html`<p class="empty">${empty}</p>`;
  return html`<figure class="chart" data-chart="${name}"><figcaption>${caption}</figcaption>${svg}</figure>`;
}

/** The axis shows times of day; the caption says which days. */
function timelineCaption({ unit, points }: ReportData['timeline']): string {
  const first = points[0];
  const last = points.at(-1);
  const span = first && last ? `, ${formatTime(first.at).slice(0, 16)} to ${formatTime(last.at).slice(0, 16)} UTC` : '';
  return `Rows saved and failed per ${unit}${span}.`;
}

function missingBox(missing: readonly string[]): Html {
  if (missing.length === 0) return html``;
  return html`<div class="warning" role="note"><strong>Not recorded in this output, so not shown:</strong><ul>${missing.map((line) => html`<li>${line}</li>`)}</ul></div>`;
}

function totalsList(totals: ReportTotals): Html {
  const item = (label: string, value: string, note?: string, kind?: string) =>
    html`<li${kind ? html` class="${kind}"` : ''}><span class="label">${label}</span><span class="value">${value}</span>${note ? html`<span class="note">${note}</span>` : ''}</li>`;
  const { startedAt, endedAt } = totals;
  const took = startedAt && endedAt ? Date.parse(endedAt) - Date.parse(startedAt) : Number.NaN;
  return html`<ul class="totals">
    ${item('Rows', formatCount(totals.rows), 'with an outcome')}
    ${item('Saved', formatCount(totals.saved), formatShare(totals.saved, totals.rows))}
    ${item('Failed', formatCount(totals.failed), formatShare(totals.failed, totals.rows), totals.failed > 0 ? 'failed' : undefined)}
    ${item('Skipped', formatCount(totals.skipped), `${formatShare(totals.skipped, totals.rows)}, on resume`)}
    ${item('Fetched', formatBytes(totals.bytesFetched), 'downloaded')}
    ${item('Written', formatBytes(totals.bytesWritten), 'stored by the sink')}
    ${startedAt ? item('First outcome', formatTime(startedAt), undefined, 'time') : ''}
    ${endedAt ? item('Last outcome', formatTime(endedAt), undefined, 'time') : ''}
    ${Number.isFinite(took) ? item('Took', formatDuration(took), 'first to last outcome') : ''}
    ${totals.rowsPerSecond !== undefined ? item('Rate', `${formatDecimal(totals.rowsPerSecond)} rows/s`, 'while running') : ''}
  </ul>`;
}

function failuresSection(failures: readonly FailureGroup[], totals: ReportTotals, chart: Html): Html {
  if (failures.length === 0) return html`<p>No row failed.</p>`;
  const rows = failures.map(
    ({ reason, count, examples }) => html`<tr>
      <td><code>${reason}</code>${reasonMeaning(reason) ? html`<span class="meaning">${reasonMeaning(reason)}</span>` : ''}</td>
      <td class="number">${formatCount(count)}</td>
      <td class="number">${formatShare(count, totals.failed)}</td>
      <td>${examples.length === 0 ? '–' : html`<ul class="examples">${examples.map(({ id, url, detail }) => html`<li><code>${id}</code> <code>${url}</code><br>${detail}</li>`)}</ul>`}</td>
    </tr>`,
  );
  return html`<p>${formatCount(totals.failed)} rows failed (${formatShare(totals.failed, totals.rows)} of ${formatCount(totals.rows)}), for ${formatCount(failures.length)} ${failures.length === 1 ? 'reason' : 'reasons'}.</p>
  ${chart}
  <table>
    <thead><tr><th>Reason</th><th class="number">Rows</th><th class="number">Of failed</th><th>Examples (id, URL, what happened)</th></tr></thead>
    <tbody>${rows}</tbody>
  </table>`;
}

/** What a failure code means, from the one table of reasons; a status code says itself. */
function reasonMeaning(reason: string): string | undefined {
  if (/^http_\d+$/.test(reason)) return `the server answered HTTP ${reason.slice(5)}`;
  return Object.hasOwn(FAILURE_REASONS, reason) ? FAILURE_REASONS[reason as keyof typeof FAILURE_REASONS].meaning : undefined;
}

function skipsSection(skips: readonly SkipGroup[]): Html {
  if (skips.length === 0) return html``;
  return html`<h3>Skipped on resume</h3>
  <table>
    <thead><tr><th>Reason</th><th class="number">Rows</th></tr></thead>
    <tbody>${skips.map(({ reason, count }) => html`<tr><td><code>${reason}</code></td><td class="number">${formatCount(count)}</td></tr>`)}</tbody>
  </table>`;
}

function hostsSection(hosts: HostSummary, chart: Html): Html {
  if (hosts.busiest.length === 0) return html`<p class="empty">No hosts were recorded.</p>`;
  const shown = hosts.busiest.length < hosts.count ? `; the busiest ${formatCount(hosts.busiest.length)} are shown` : '';
  return html`<p>The rows came from ${formatCount(hosts.count)} ${hosts.count === 1 ? 'host' : 'hosts'}${shown}.</p>
  ${chart}
  <table>
    <thead><tr><th>Host</th><th class="number">Rows</th><th class="number">Failed</th><th class="number">Failure rate</th><th class="number">Slow-downs (429, 503)</th></tr></thead>
    <tbody>${hosts.busiest.map(
      ({ host, rows, failed, slowDowns }) => html`<tr><td><code>${host}</code></td><td class="number">${formatCount(rows)}</td><td class="number">${formatCount(failed)}</td><td class="number">${formatShare(failed, rows)}</td><td class="number">${slowDowns === undefined ? '–' : formatCount(slowDowns)}</td></tr>`,
    )}</tbody>
  </table>`;
}

function bucketsSection(images: ImageSummary, chart: Html): Html {
  const below = images.buckets.filter(({ belowBatch }) => belowBatch);
  const imagesBelow = below.reduce((sum, { count }) => sum + count, 0);
  const warning =
    below.length === 0
      ? html``
      : html`<div class="warning" role="note"><strong>${formatCount(below.length)} of ${formatCount(images.buckets.length)} ${images.buckets.length === 1 ? 'bucket holds' : 'buckets hold'} fewer images than the batch size (${formatCount(images.batchSize)}): ${formatCount(imagesBelow)} ${imagesBelow === 1 ? 'image' : 'images'} in all.</strong>
      <ul>${below.map(({ label, count }) => html`<li><code>${label}</code>: ${formatCount(count)} ${count === 1 ? 'image' : 'images'}</li>`)}</ul></div>`;
  return html`<h3>Aspect-ratio buckets</h3>
  <p>${images.bucketRule}</p>
  ${images.resolutionNote ? html`<p>${images.resolutionNote}</p>` : ''}
  ${warning}
  ${chart}`;
}

function captionsSummary(captions: ReportData['captions']): Html {
  if (captions.total === 0) return html`<p class="empty">No captions were counted.</p>`;
  return html`<p>${formatCount(captions.total)} saved samples: ${formatCount(captions.fromFallback)} (${formatShare(captions.fromFallback, captions.total)}) took their caption from the fallback column, ${formatCount(captions.missing)} (${formatShare(captions.missing, captions.total)}) have none.</p>`;
}

function contactSheet(thumbnails: readonly Thumbnail[], saved: number): Html {
  if (thumbnails.length === 0) return html`<p class="empty">No thumbnails: no stored image could be shown.</p>`;
  const cells = thumbnails.map(({ id, caption, src, href, width, height }) => {
    // The policy would block any other source (and the page promises it asks for nothing).
    if (!src.startsWith('data:image/')) throw new TypeError(`thumbnail ${id}: src must be a data:image/ URI, got ${src.slice(0, 40)}`);
    const image = html`<img src="${src}" width="${width}" height="${height}" alt="${caption}" decoding="async">`;
    return html`<li title="${`${id}\n${caption}`}"><div class="frame">${href === undefined ? image : html`<a href="${relativeHref(href)}">${image}</a>`}</div><span class="id">${id}</span></li>`;
  });
  return html`<p>${formatCount(thumbnails.length)} of ${formatCount(saved)} saved images${thumbnails.some(({ href }) => href !== undefined) ? '; each links to its stored file' : ''}. Hover over one for its id and caption.</p>
  <ul class="contact-sheet">${cells}</ul>`;
}

/**
 * A stored file's path as a link relative to the page, each name percent-encoded: a
 * name's `#`, `?` or `:` stays part of the name (`a:b.jpg` cannot become a scheme).
 */
function relativeHref(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
