/**
 * Parsers of flag values, shared by every command: each turns the text into the value the
 * options want, or throws commander's InvalidArgumentError, which names the flag.
 */
import { InvalidArgumentError } from 'commander';

export function integer(value: string): number {
  const number = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(number)) throw new InvalidArgumentError('expected a whole number');
  return number;
}

/** Seconds (fractions allowed) to milliseconds. */
export function seconds(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0) throw new InvalidArgumentError('expected seconds, e.g. 30 or 0.5');
  return Math.round(number * 1000);
}

/** A number of at least 0 (`--megapixels 1.25`). */
export const decimal = (value: string): number => parseNumber(value, false);
/** A number above 0 (`--rate 0.5`). */
export const rate = (value: string): number => parseNumber(value, true);

function parseNumber(value: string, positive: boolean): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0 || (positive && number === 0)) {
    throw new InvalidArgumentError(positive ? 'expected a number above 0, e.g. 10 or 0.5' : 'expected a number, e.g. 1.25');
  }
  return number;
}

/** `1001-2000`, `1001-` (to the end) or `-2000` (from the start). */
export function rowRange(value: string): { first: number; last: number } {
  const match = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(value);
  if (!match || (match[1] === '' && match[2] === '')) throw new InvalidArgumentError('expected FIRST-LAST, e.g. 1001-2000, 1001- or -2000');
  return { first: match[1] ? Number(match[1]) : 1, last: match[2] ? Number(match[2]) : Number.MAX_SAFE_INTEGER };
}

export function list(value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter(Boolean);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3 };

/** A byte count with an optional unit: 1048576, 64MiB, 10MB, 512k. */
export function byteSize(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = UNITS[match?.[2]?.toLowerCase() ?? 'x'];
  if (!match || unit === undefined) throw new InvalidArgumentError('expected a size such as 1048576, 64MiB or 10MB');
  return Math.round(Number(match[1]) * unit);
}
