/**
 * Size filters before the fetch: a row whose declared width and height would fail
 * `--min-megapixels`, `--min-side` or `--max-aspect` becomes `filtered_metadata` without a
 * request (the image stage checks the real size again after decoding).
 */
import { sizeFilterProblem, type SizeFilters } from '../image/size-rule.js';
import { failed, type Item } from '../types.js';

export function metadataFilterStage(filters: SizeFilters): (items: AsyncIterable<Item>) => AsyncGenerator<Item> {
  return async function* filterByMetadata(items) {
    for await (const item of items) {
      if (item.kind === 'row' && item.row.width && item.row.height) {
        const problem = sizeFilterProblem({ width: item.row.width, height: item.row.height }, filters);
        if (problem) {
          yield failed(item.row, 'filtered_metadata', `row ${item.row.index} (id ${item.row.id}): declared ${problem}`);
          continue;
        }
      }
      yield item;
    }
  };
}
