/** How a run uses the resume state of its output folder. */
import { UsageError } from '../errors.js';
import { defined, integer } from '../util/validate.js';

/** What `--dedupe` compares: the URL (before fetching) or the fetched bytes' sha256 (after). */
export type DedupeKey = 'url' | 'content';
export const DEDUPE_KEYS: readonly DedupeKey[] = ['url', 'content'];

export interface ResumeOptions {
  /** Keep state in `{output}/.pipeline` and skip what earlier runs finished. */
  readonly enabled: boolean;
  /** Runs a transiently failing sample is tried in, in total. */
  readonly maxAttempts: number;
  /** Try every failed sample once more. */
  readonly retryFailed: boolean;
  /**
   * Skip a row whose URL (`url`) or whose fetched bytes (`content`) were already saved
   * under another id (`--dedupe url,content`); empty: no dedupe.
   */
  readonly dedupe: readonly DedupeKey[];
}

export const RESUME_DEFAULTS: ResumeOptions = Object.freeze({ enabled: true, maxAttempts: 5, retryFailed: false, dedupe: Object.freeze([]) });

export function resolveResumeOptions(given: Partial<ResumeOptions> = {}): ResumeOptions {
  const value = { ...RESUME_DEFAULTS, ...defined(given) };
  const unknown = value.dedupe.filter((key) => !DEDUPE_KEYS.includes(key));
  if (unknown.length > 0) throw new UsageError(`--dedupe ${unknown.join(',')}: expected url, content or url,content`);
  // In a fixed order, so that two workers given `content,url` and `url,content` agree.
  const dedupe = DEDUPE_KEYS.filter((key) => value.dedupe.includes(key));
  if (dedupe.length > 0 && !value.enabled) {
    throw new UsageError(`--dedupe ${dedupe.join(',')} needs the resume state (it remembers what was saved): drop --no-resume`);
  }
  return { enabled: value.enabled, maxAttempts: integer('--max-attempts', value.maxAttempts, 1, 1000), retryFailed: value.retryFailed, dedupe };
}
