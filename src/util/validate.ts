/**
 * Checks of option values, shared by every subsystem's option resolver. Each names the
 * flag the value came from, so a library caller and a command-line user read the same
 * message (`--round must be a whole number from 1 to 4096, got 0`).
 */
import { isAbsolute, normalize } from 'node:path';
import { UsageError } from '../errors.js';

export function integer(flag: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export function aboveZero(flag: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a number above 0, got ${String(value)}`);
  return value;
}

export function atLeastZero(flag: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${flag} must be a number of at least 0, got ${String(value)}`);
  return value;
}

export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): asserts value is T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
}

/** A path on the machine that will read the output: it must not depend on this one's working directory. */
export function absolutePath(flag: string, value: string): string {
  if (!isAbsolute(value)) throw new UsageError(`${flag} must be an absolute path (where the output folder will be), got ${JSON.stringify(value)}`);
  return normalize(value).replace(/(.)\/+$/, '$1');
}

/** The fields of `value` that are not undefined (a partial given by a caller, before defaults). */
export function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
