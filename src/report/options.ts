/** What a run reports besides its summary line: result and summary files, metrics, progress. */
import { defined, integer } from '../util/validate.js';

export interface ReportOptions {
  readonly resultsPath?: string;
  readonly summaryPath?: string;
  /** Prometheus text-format counters, rewritten every few seconds. */
  readonly metricsPath?: string;
  /** A live progress bar (on a terminal) instead of plain lines. */
  readonly progressBar: boolean;
  readonly quiet: boolean;
  /** Interval between plain progress lines on stderr; 0 turns them off. */
  readonly logEveryMs: number;
}

export const REPORT_DEFAULTS = Object.freeze({ progressBar: false, quiet: false, logEveryMs: 60_000 } satisfies Partial<ReportOptions>);

export function resolveReportOptions(given: Partial<ReportOptions> = {}): ReportOptions {
  const value = { ...REPORT_DEFAULTS, ...defined(given) };
  return {
    ...(value.resultsPath === undefined ? {} : { resultsPath: value.resultsPath }),
    ...(value.summaryPath === undefined ? {} : { summaryPath: value.summaryPath }),
    ...(value.metricsPath === undefined ? {} : { metricsPath: value.metricsPath }),
    progressBar: value.progressBar,
    quiet: value.quiet,
    logEveryMs: integer('--log-every', value.logEveryMs, 0, 24 * 3600_000),
  };
}
