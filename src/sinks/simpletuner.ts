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
 * - Every string of every dataset goes through `fill_variables_in_config_paths`
 *   (data_backend/factory.py:1194-1218, called at 1877; configuration/template_vars.py:10-28):
 *   `{model_family}` becomes `--model_family`, `{id}` the dataset's id, `{output_dir}` and
 *   `{env:NAME}` what they say, and any other `{...}` stays. The caches use the first two.
 * - `cache_dir_vae` must differ between datasets, and from every text-embeds `cache_dir`
 *   (factory.py:4128-4138).
 * - `resolution_type`: `pixel` is the shorter edge in pixels, `area` is megapixels,
 *   `pixel_area` is an edge length turned into an area; `minimum_image_size` is in the
 *   same unit, and above 5 megapixels SimpleTuner rejects it.
 *
 * The config is a function of the output's path and the run's size settings alone, never
 * of what is stored: every metadata refresh writes the same bytes.
 */
import { basename, join } from 'node:path';
import { roundToMultiple, type SizeRule } from '../image/size-rule.js';

export const DATALOADER_FILE = 'simpletuner-dataloader.json';

/** SimpleTuner refuses an `area` minimum above 5 megapixels (base.py:1263-1266), and so a `pixel_area` one above its square root. */
const MAX_MINIMUM_MEGAPIXELS = 5;

/** The dataloader config for the dataset whose folder will be at `root`. */
export function simpleTunerConfig(root: string, rule: SizeRule): object[] {
  const id = datasetId(root);
  return [
    {
      id,
      type: 'local',
      dataset_type: 'image',
      instance_data_dir: root,
      // Bucketed by aspect ratio, not cropped to squares. (SimpleTuner may still trim the
      // few pixels between its aligned target and the resized image: docs/simpletuner.md.)
      crop: false,
      ...resolutionOf(rule),
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
      // Latents belong to a model's VAE: one cache per model family, filled in by
      // SimpleTuner (factory.py:1194-1218), laid out as its own default
      // `{output_dir}/cache/vae/{model_family}/{id}` (factory.py:1460-1468). `{id}` lets
      // this folder be listed twice under two ids (two resolutions) without sharing one.
      cache_dir_vae: join(root, 'cache', 'vae', '{model_family}', '{id}'),
    },
    {
      id: `${id}-text-embeds`,
      type: 'local',
      dataset_type: 'text_embeds',
      default: true,
      // Embeddings belong to a model's text encoders: SimpleTuner's own default text
      // cache is `{output_dir}/cache/text/{model_family}` (factory.py:2354-2358).
      cache_dir: join(root, 'cache', 'text', '{model_family}'),
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
 * SimpleTuner's resolution settings for the run's size rule.
 * - shortest and center-crop: `pixel` (SimpleTuner's pixel mode sizes the shorter edge,
 *   exactly what these modes did; it leaves the images as they are when their sides are
 *   multiples of its alignment).
 * - area: `area`, in megapixels.
 * - longest and none: `pixel_area`, `--resolution` (or SimpleTuner's own default of 1024
 *   when nothing was resized). SimpleTuner has no mode that keeps a longer side or an
 *   image's own size: each image is resized again to about `resolution`² pixels, so a
 *   3:2 photo stored at 1024x704 is trained at 1216x832. No mapping avoids that;
 *   docs/simpletuner.md says so.
 */
function resolutionOf(rule: SizeRule): Resolution {
  const minimum = minimumOf(rule);
  switch (rule.resize) {
    case 'shortest':
      return { resolution: roundToMultiple(rule.resolution, rule.round), resolution_type: 'pixel', minimum_image_size: minimum };
    case 'center-crop':
      return { resolution: rule.resolution, resolution_type: 'pixel', minimum_image_size: minimum };
    case 'area':
      return { resolution: rule.megapixels, resolution_type: 'area', minimum_image_size: minimum };
    case 'longest':
      return { resolution: rule.resolution, resolution_type: 'pixel_area', minimum_image_size: minimum };
    case 'none':
      return { resolution: 1024, resolution_type: 'pixel_area', minimum_image_size: minimum };
  }
}

/**
 * `minimum_image_size`, in the unit of the mode's `resolution_type`: the least that every
 * image this size rule stores has, by construction, so that SimpleTuner filters none of
 * them out. It is never left unset: SimpleTuner prunes buckets too small for a batch only
 * when a minimum is set (metadata/backends/base.py:1024-1027).
 *
 * Images smaller than the target with `--no-upscale` are stored as they were fetched, so
 * any size down to 1x1 can be on disk: the minimum is then the smallest SimpleTuner
 * takes (one pixel). With `--skip-small` those images are not stored at all, but that
 * setting is not part of the size rule, and one pixel keeps the minimum true either way.
 */
function minimumOf(rule: SizeRule): number {
  const keepsSmall = !rule.upscale;
  switch (rule.resize) {
    case 'shortest':
      // Shorter side to --resolution, rounded to a multiple of --round: both sides are at least that.
      return keepsSmall ? 1 : leastRounded(rule.resolution, rule.round);
    case 'center-crop':
      return keepsSmall ? 1 : rule.resolution;
    case 'area':
      return megapixelsAtMost(keepsSmall ? 1 : leastRoundedArea(rule.megapixels * 1e6, rule.round));
    case 'longest':
      // The longer side is --resolution (rounded); the shorter is at least one multiple of --round.
      return squareEdgeAtMost(keepsSmall ? 1 : rule.round * leastRounded(rule.resolution, rule.round));
    case 'none':
      return 1;
  }
}

/**
 * The least `roundToMultiple` gives for a side that should come out as `value`: the
 * resize computes it as `side × (value / side)`, which in floating point can land one ulp
 * below `value` (47 × (24 / 47) is 23.999999999999996), and that rounds down where
 * `value` exactly is a half that rounds up (224 to multiples of 64: 256, or 192 just below).
 */
function leastRounded(value: number, multiple: number): number {
  return Math.min(roundToMultiple(value, multiple), roundToMultiple(value * (1 - 4 * Number.EPSILON), multiple));
}

/**
 * The least area `--resize area` stores for a target of `area` pixels. Scaled to the
 * target, each side is then rounded to a multiple of `multiple`, which moves it by up to
 * half a multiple. The worst case is a long, thin image whose shorter side falls from
 * just under k + ½ multiples to k: for k = 1 that drops a third of the area, so a
 * 1-megapixel target guarantees only about 0.66 megapixels. (A shorter side under half a
 * multiple rounds up to one: more area, not less.) Every side is at least one multiple.
 */
function leastRoundedArea(area: number, multiple: number): number {
  let least = 2 * area - (multiple * multiple) / 2; // shorter side under half a multiple, rounded up to one
  for (let k = 1; (k - 0.5) * multiple <= Math.sqrt(area); k++) {
    // Shorter side just under (k + ½) multiples, rounded down to k; the longer side loses up to half a multiple.
    least = Math.min(least, k * multiple * (area / ((k + 0.5) * multiple) - multiple / 2));
  }
  // The arithmetic of the resize is floating point: keep a pixel of slack.
  return Math.max(multiple * multiple, Math.floor(least) - 1);
}

/**
 * An `area` minimum for images of at least `pixels`: megapixels, at most 5, such that
 * SimpleTuner's own test (`minimum × 1e6 <= width × height`, base.py:1267-1276, in
 * floating point as here) passes for that many pixels.
 */
function megapixelsAtMost(pixels: number): number {
  let micro = Math.min(Math.floor(pixels), MAX_MINIMUM_MEGAPIXELS * 1e6);
  while ((micro / 1e6) * 1e6 > pixels) micro--;
  return micro / 1e6;
}

/**
 * A `pixel_area` minimum (an edge length) for images of at least `pixels`: SimpleTuner
 * squares it into megapixels (`edge² / 1e6`, factory.py:2982-2983) and multiplies back
 * (base.py:1267), so the edge is the largest whose round trip stays within `pixels`.
 */
function squareEdgeAtMost(pixels: number): number {
  let edge = Math.min(Math.floor(Math.sqrt(pixels)), Math.floor(Math.sqrt(MAX_MINIMUM_MEGAPIXELS * 1e6)));
  while (((edge * edge) / 1e6) * 1e6 > pixels) edge--;
  return edge;
}

/**
 * The least shorter side and area an image needs for SimpleTuner to keep it under this
 * rule's `minimum_image_size` (whichever of the two the mode's unit checks; the other is 0).
 */
export function keptBySimpleTuner(rule: SizeRule): { readonly side: number; readonly area: number } {
  const { resolution_type: type, minimum_image_size: minimum } = resolutionOf(rule);
  if (type === 'pixel') return { side: minimum, area: 0 };
  const megapixels = type === 'area' ? minimum : (minimum * minimum) / 1e6;
  return { side: 0, area: Math.ceil(megapixels * 1e6) };
}
