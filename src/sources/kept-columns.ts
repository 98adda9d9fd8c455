/**
 * `--keep-columns`: input columns carried into metadata.parquet, the WebDataset `.json` and
 * the Parquet shards, beside the metadata the sink writes anyway. A Parquet input's column
 * keeps its Arrow type (text, integers of its width, floats, booleans, lists of text);
 * a type without a plain Parquet counterpart here (a struct, a timestamp) and every NDJSON
 * value that is not text are written as JSON text, so nothing is lost. CSV values are text.
 */
import * as arrow from 'apache-arrow';

export type KeptType = 'utf8' | 'int32' | 'int64' | 'float32' | 'float64' | 'bool' | 'list<utf8>' | 'json';

export interface KeptColumn {
  readonly name: string;
  readonly type: KeptType;
}

/** The kept type for a Parquet column's Arrow type. */
export function keptTypeOf(type: arrow.DataType): KeptType {
  if (arrow.DataType.isUtf8(type) || arrow.DataType.isLargeUtf8(type)) return 'utf8';
  if (arrow.DataType.isInt(type)) return type.bitWidth === 64 ? 'int64' : 'int32';
  if (arrow.DataType.isFloat(type)) return type.precision === arrow.Precision.DOUBLE ? 'float64' : 'float32';
  if (arrow.DataType.isBool(type)) return 'bool';
  if (arrow.DataType.isList(type) && type.children[0] && arrow.DataType.isUtf8(type.children[0].type)) return 'list<utf8>';
  return 'json';
}

/** A kept value as its column wants it (null when absent or of another kind). */
export function keptValue(value: unknown, type: KeptType): string | number | bigint | boolean | string[] | null {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'utf8':
    case 'json':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'int32':
    case 'float32':
    case 'float64': {
      const number = Number(value);
      return Number.isFinite(number) ? number : null;
    }
    case 'int64':
      try {
        return BigInt(value as string | number);
      } catch {
        return null;
      }
    case 'bool':
      return typeof value === 'boolean' ? value : null;
    case 'list<utf8>':
      return Array.isArray(value) ? value.map((item) => (item === null || item === undefined ? '' : String(item))) : null;
  }
}

/** The Arrow type a kept column is written with. */
export function arrowTypeOf(type: KeptType): arrow.DataType {
  switch (type) {
    case 'utf8':
    case 'json':
      return new arrow.Utf8();
    case 'int32':
      return new arrow.Int32();
    case 'int64':
      return new arrow.Int64();
    case 'float32':
      return new arrow.Float32();
    case 'float64':
      return new arrow.Float64();
    case 'bool':
      return new arrow.Bool();
    case 'list<utf8>':
      return new arrow.List(new arrow.Field('item', new arrow.Utf8(), true));
  }
}

/** The kept values of a source row, by column name. */
export function keptValues(row: Readonly<Record<string, unknown>>, kept: readonly KeptColumn[]): Record<string, unknown> | null {
  if (kept.length === 0) return null;
  return Object.fromEntries(kept.map(({ name }) => [name, row[name] ?? null]));
}
