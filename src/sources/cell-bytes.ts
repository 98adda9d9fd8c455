/**
 * How many bytes of text and binary each row of an Arrow column holds: what
 * `--max-row-bytes` counts of a Parquet row, from the offsets alone (no cell is decoded).
 */
import * as arrow from 'apache-arrow';

/**
 * Each row's bytes of text and binary in `vector` (in lists, structs, maps and
 * dictionaries too), added to `sizes`: what `--max-row-bytes` counts. Fixed-width values
 * are left out; their size is bounded by their type.
 */
export function addCellBytes(vector: arrow.Vector | null, sizes: Float64Array): void {
  if (!vector) return;
  let row = 0;
  for (const data of vector.data) {
    addDataBytes(data, sizes, row);
    row += data.length;
  }
}

function addDataBytes(data: arrow.Data, sizes: Float64Array, at: number): void {
  const type = data.type;
  const { DataType } = arrow;
  if (DataType.isUtf8(type) || DataType.isBinary(type) || DataType.isLargeUtf8(type) || DataType.isLargeBinary(type)) {
    const offsets = data.valueOffsets as ArrayLike<number | bigint>;
    for (let i = 0; i < data.length; i++) sizes[at + i]! += Number(offsets[i + 1]!) - Number(offsets[i]!);
  } else if (DataType.isList(type) || DataType.isLargeList(type) || DataType.isMap(type)) {
    const offsets = data.valueOffsets as ArrayLike<number | bigint>;
    const items = childBytes(data.children[0]);
    for (let i = 0; i < data.length; i++) for (let item = Number(offsets[i]!); item < Number(offsets[i + 1]!); item++) sizes[at + i]! += items[item]!;
  } else if (DataType.isFixedSizeList(type)) {
    const items = childBytes(data.children[0]);
    for (let i = 0; i < data.length; i++) for (let item = i * type.listSize; item < (i + 1) * type.listSize; item++) sizes[at + i]! += items[item]!;
  } else if (DataType.isStruct(type)) {
    for (const child of data.children) addDataBytes(child, sizes, at);
  } else if (DataType.isDictionary(type) && data.dictionary) {
    const words = new Float64Array(data.dictionary.length);
    addCellBytes(data.dictionary, words);
    const keys = data.values as ArrayLike<number | bigint>;
    for (let i = 0; i < data.length; i++) sizes[at + i]! += words[Number(keys[i]!)] ?? 0;
  }
}

function childBytes(child: arrow.Data | undefined): Float64Array {
  const sizes = new Float64Array(child?.length ?? 0);
  if (child) addDataBytes(child, sizes, 0);
  return sizes;
}
