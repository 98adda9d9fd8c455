/**
 * The kinds of flag value: how each turns the text a user typed into the value the options
 * want (throwing commander's InvalidArgumentError, which names the flag), and how a value
 * is shown again (a default in `--help` and docs/cli.md).
 */
import { InvalidArgumentError } from 'commander';

export interface ValueKind<T> {
  /** The placeholder in the flag's usage, e.g. `<seconds>`. */
  readonly placeholder: string;
  parse(text: string): T;
  show(value: T): string;
}

export const integer: ValueKind<number> = {
  placeholder: 'n',
  parse(text) {
    const number = Number(text);
    if (!/^\s*-?\d+\s*$/.test(text) || !Number.isSafeInteger(number)) throw new InvalidArgumentError('expected a whole number');
    return number;
  },
  show: String,
};

/** Seconds (fractions allowed), as milliseconds. */
export const seconds: ValueKind<number> = {
  placeholder: 'seconds',
  parse(text) {
    const number = Number(text);
    if (text.trim() === '' || !Number.isFinite(number) || number < 0) throw new InvalidArgumentError('expected seconds, e.g. 30 or 0.5');
    return Math.round(number * 1000);
  },
  show: (ms) => String(ms / 1000),
};

/** A number of at least 0 (`--megapixels 1.25`). */
export const decimal: ValueKind<number> = numberKind(false);
/** A number above 0 (`--rate 0.5`). */
export const positiveDecimal: ValueKind<number> = numberKind(true);

function numberKind(positive: boolean): ValueKind<number> {
  return {
    placeholder: 'n',
    parse(text) {
      const number = Number(text);
      if (text.trim() === '' || !Number.isFinite(number) || number < 0 || (positive && number === 0)) {
        throw new InvalidArgumentError(positive ? 'expected a number above 0, e.g. 10 or 0.5' : 'expected a number, e.g. 1.25');
      }
      return number;
    },
    show: String,
  };
}

/** A share of something: above 0 and at most 1 (`--sample 0.01`). */
export const fraction: ValueKind<number> = {
  placeholder: 'fraction',
  parse(text) {
    const number = Number(text);
    if (text.trim() === '' || !Number.isFinite(number) || number <= 0 || number > 1) throw new InvalidArgumentError('expected a fraction above 0 and at most 1, e.g. 0.01 for 1%');
    return number;
  },
  show: String,
};

/** `1001-2000`, `1001-` (to the end) or `-2000` (from the start). */
export const rowRange: ValueKind<{ first: number; last: number }> = {
  placeholder: 'first-last',
  parse(text) {
    const match = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(text);
    if (!match || (match[1] === '' && match[2] === '')) throw new InvalidArgumentError('expected FIRST-LAST, e.g. 1001-2000, 1001- or -2000');
    return { first: match[1] ? Number(match[1]) : 1, last: match[2] ? Number(match[2]) : Number.MAX_SAFE_INTEGER };
  },
  show: ({ first, last }) => `${first}-${last === Number.MAX_SAFE_INTEGER ? '' : last}`,
};

/** Comma-separated items. */
export const list: ValueKind<string[]> = {
  placeholder: 'list',
  parse: (text) => text.split(',').map((item) => item.trim()).filter(Boolean),
  show: (items) => items.join(','),
};

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3 };

/** A byte count with an optional unit: 1048576, 64MiB, 10MB, 512k. */
export const byteSize: ValueKind<number> = {
  placeholder: 'size',
  parse(text) {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
    const unit = UNITS[match?.[2]?.toLowerCase() ?? 'x'];
    if (!match || unit === undefined) throw new InvalidArgumentError('expected a size such as 1048576, 64MiB or 10MB');
    return Math.round(Number(match[1]) * unit);
  },
  show(bytes) {
    for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
      if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
    }
    return String(bytes);
  },
};

/** Any text, as given. */
export const text = (placeholder: string): ValueKind<string> => ({ placeholder, parse: (value) => value, show: (value) => value });

/** One of a few words (commander lists them in `--help` and refuses others). */
export function choice<const T extends string>(values: readonly T[], placeholder: string): ValueKind<T> & { readonly choices: readonly T[] } {
  return {
    placeholder,
    choices: values,
    parse(value) {
      if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
      return value as T;
    },
    show: (value) => value,
  };
}

/** Comma-separated words, each one of a few (`--dedupe url,content`); each word once. */
export function choiceList<const T extends string>(values: readonly T[], placeholder: string): ValueKind<T[]> {
  return {
    placeholder,
    parse(text) {
      const words = list.parse(text);
      const unknown = words.filter((word) => !(values as readonly string[]).includes(word));
      if (words.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`expected one or more of ${values.join(', ')}, comma-separated`);
      return values.filter((value) => words.includes(value));
    },
    show: (chosen) => chosen.join(','),
  };
}

/** Several values after one flag (`--input a.parquet b.parquet`), collected in order. */
export function several(placeholder: string): ValueKind<string[]> & { readonly variadic: true } {
  return { placeholder: `${placeholder}...`, variadic: true, parse: (value) => [value], show: (values) => values.join(' ') };
}
