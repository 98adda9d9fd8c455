/**
 * Numbers and times as the page writes them. One fixed locale and UTC, so the same data
 * gives the same page on every machine (and the times match `status`'s, which are UTC).
 */

const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const short = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function formatCount(value: number): string {
  return whole.format(value);
}

/** A number that may have a fraction (rates, megapixels): at most one decimal. */
export function formatDecimal(value: number): string {
  return short.format(value);
}

/** `part` of `total` as a percentage; a share too small to round to 0.1% still says it is there. */
export function formatShare(part: number, total: number): string {
  if (total <= 0) return '–';
  const percent = (part / total) * 100;
  if (part > 0 && percent < 0.1) return '<0.1%';
  return `${short.format(percent)}%`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? whole.format(value) : short.format(value)} ${BYTE_UNITS[unit]}`;
}

/** `2026-11-26 14:49:08 UTC`, or the text as given when it is not a time. */
export function formatTime(iso: string): string {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return iso;
  return `${new Date(time).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** `3 h 12 min`, `4 min 05 s`, `12 s`. */
export function formatDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (hours > 0) return `${hours} h ${minutes} min`;
  if (minutes > 0) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${seconds} s`;
}
