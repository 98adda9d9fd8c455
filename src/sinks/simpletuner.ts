/**
 * `simpletuner-dataloader.json`: a complete SimpleTuner dataloader config for a `dir`
 * output, so that `--data_backend_config` can point at it with no edits.
 *
 * Checked against SimpleTuner 4.8.0 (bghira/SimpleTuner at bc8e6ab, 2026-08-22):
 * - The file is `json.load`ed and each element used as a dict: it must be a list.
 * - `instance_data_dir` is stripped from each listed file's absolute path by plain string
 *   replacement to find its metadata row, so it must be absolute (and `parquet.path` is
 *   not joined with it, so that one too).
 * - Releases before 2025-12-16 refuse a config without a `text_embeds` dataset; later
 *   ones add one themselves when it is missing, and accept ours.
 * - `cache_dir_vae` must differ between datasets; ours lives in the output folder, so two
 *   outputs combined in one config never share one.
 * - `resolution_type`: `pixel` is the shorter edge in pixels, `area` is megapixels,
 *   `pixel_area` is an edge length turned into an area; `minimum_image_size` is in the
 *   same unit, and above 5 megapixels SimpleTuner rejects it.
 */
import { basename, join } from 'node:path';
import { roundToMultiple, type SizeRule } from '../image/size-rule.js';

/** The smallest stored image, over every sample in the metadata. */
export interface StoredSizes {
  /** The smallest shorter side. */
  readonly minSide: number;
  /** The smallest area, in pixels. */
  readonly minArea: number;
}

export const DATALOADER_FILE = 'simpletuner-dataloader.json';

/** SimpleTuner refuses an `area` minimum above 5 megapixels (and so a `pixel_area` one above its square root). */
const MAX_MINIMUM_MEGAPIXELS = 5;

/** The dataloader config for the dataset whose folder will be at `root`. */
export function simpleTunerConfig(root: string, rule: SizeRule, stored: StoredSizes): object[] {
  const id = datasetId(root);
  return [
    {
      id,
      type: 'local',
      dataset_type: 'image',
      instance_data_dir: root,
      // The images are already at their training size: let SimpleTuner bucket them as they are.
      crop: false,
      ...resolutionOf(rule, stored),
      caption_strategy: 'parquet',
      metadata_backend: 'parquet',
      parquet: {
        path: join(root, 'metadata.parquet'),
        filename_column: 'filename',
        caption_column: 'caption',
        // The filename column holds `{id}.{ext}`: SimpleTuner compares it with the file's
        // path under instance_data_dir, extension included.
        identifier_includes_extension: true,
        width_column: 'width',
        height_column: 'height',
      },
      cache_dir_vae: join(root, 'cache', 'vae'),
    },
    {
      id: `${id}-text-embeds`,
      type: 'local',
      dataset_type: 'text_embeds',
      default: true,
      cache_dir: join(root, 'cache', 'text'),
    },
  ];
}

/**
 * The dataset id: the folder's name, in characters that are safe in the file names
 * SimpleTuner builds from it (`aspect_ratio_bucket_indices_{id}.json`).
 */
export function datasetId(root: string): string {
  const name = basename(root).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
  return name || 'photo-concept-pipeline';
}

interface Resolution {
  readonly resolution: number;
  readonly resolution_type: 'pixel' | 'area' | 'pixel_area';
  readonly minimum_image_size: number;
}

/**
 * SimpleTuner's resolution settings for what the run produced. The target is the run's
 * own, so SimpleTuner does not resample again; the minimum is the smallest stored image
 * (in SimpleTuner's unit, rounded down), so it filters none of them out.
 * - shortest and center-crop: `pixel` (SimpleTuner's pixel mode sizes the shorter edge,
 *   exactly what these modes did).
 * - area: `area`, in megapixels.
 * - longest and none: `pixel_area` (SimpleTuner has no longer-edge mode; an area keeps
 *   the pixel budget of a longest-side target): `--resolution`, or SimpleTuner's own
 *   default of 1024 when nothing was resized.
 */
function resolutionOf(rule: SizeRule, stored: StoredSizes): Resolution {
  const maxMinimumEdge = Math.floor(Math.sqrt(MAX_MINIMUM_MEGAPIXELS * 1e6));
  const areaEdge = Math.min(Math.floor(Math.sqrt(stored.minArea)), maxMinimumEdge);
  switch (rule.resize) {
    case 'shortest':
      return { resolution: roundToMultiple(rule.resolution, rule.round), resolution_type: 'pixel', minimum_image_size: stored.minSide };
    case 'center-crop':
      return { resolution: rule.resolution, resolution_type: 'pixel', minimum_image_size: stored.minSide };
    case 'area':
      return {
        resolution: rule.megapixels,
        resolution_type: 'area',
        minimum_image_size: Math.min(Math.floor(stored.minArea / 1e3) / 1e3, MAX_MINIMUM_MEGAPIXELS),
      };
    case 'longest':
      return { resolution: rule.resolution, resolution_type: 'pixel_area', minimum_image_size: areaEdge };
    case 'none':
      return { resolution: 1024, resolution_type: 'pixel_area', minimum_image_size: areaEdge };
  }
}
