/**
 * `--sample FRACTION --seed N`: a fixed subset of the rows, chosen by each row's id alone.
 *
 * A row is kept when the first 8 bytes of SHA-256(`${seed}:${id}`) (UTF-8), read as a
 * big-endian unsigned 64-bit integer, are below FRACTION x 2^64. So:
 *
 * - the choice needs nothing but the row: every run, every queue worker (each applies it
 *   to its job's rows) and every input order keep the same rows, and resume holds;
 * - SHA-256 is fixed by its standard, so the choice does not change between versions of
 *   this tool, of Node or of anything else;
 * - a larger fraction with the same seed keeps a superset (the threshold only moves up):
 *   `--sample 0.01` then `--sample 0.1` fetches the first rows again only as skips;
 * - another seed is an independent draw.
 *
 * Rows whose id is not known (a line that is not JSON) cannot be placed, and are kept:
 * their failure (`bad_row`) says the input is damaged, which a sample should not hide.
 */
import { createHash } from 'node:crypto';
import type { Item } from '../types.js';
import type { Sample } from './options.js';

/** Whether the sample keeps the row with this id. */
export function sampleKeeps(sample: Sample): (id: string) => boolean {
  // Exact: FRACTION x 2^64 only shifts the exponent; floor for fractions below 2^-11.
  const threshold = BigInt(Math.floor(sample.fraction * 2 ** 64));
  const prefix = `${sample.seed}:`;
  return (id) => createHash('sha256').update(prefix + id).digest().readBigUInt64BE(0) < threshold;
}

/** The items the sample keeps (see above); the others are left out, as if not in the input. */
export async function* sampled(items: AsyncIterable<Item>, sample: Sample): AsyncGenerator<Item> {
  const keeps = sampleKeeps(sample);
  for await (const item of items) {
    const id = item.row.id;
    if (id === undefined || keeps(id)) yield item;
  }
}
