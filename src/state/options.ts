/** How a run uses the resume state of its output folder. */
import { UsageError } from '../errors.js';
import { defined, integer } from '../util/validate.js';

export interface ResumeOptions {
  /** Keep state in `{output}/.pipeline` and skip what earlier runs finished. */
  readonly enabled: boolean;
  /** Runs a transiently failing sample is tried in, in total. */
  readonly maxAttempts: number;
  /** Try every failed sample once more. */
  readonly retryFailed: boolean;
  /** Skip a row whose URL was already saved under another id (`--dedupe url`). */
  readonly dedupeUrls: boolean;
}

export const RESUME_DEFAULTS: ResumeOptions = Object.freeze({ enabled: true, maxAttempts: 5, retryFailed: false, dedupeUrls: false });

export function resolveResumeOptions(given: Partial<ResumeOptions> = {}): ResumeOptions {
  const value = { ...RESUME_DEFAULTS, ...defined(given) };
  if (value.dedupeUrls && !value.enabled) {
    throw new UsageError('--dedupe url needs the resume state (it remembers which URLs were saved): drop --no-resume');
  }
  return { enabled: value.enabled, maxAttempts: integer('--max-attempts', value.maxAttempts, 1, 1000), retryFailed: value.retryFailed, dedupeUrls: value.dedupeUrls };
}
