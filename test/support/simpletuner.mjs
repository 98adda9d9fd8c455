// Loads a dataloader config the way SimpleTuner does, and answers what it would train on.
//
// Written from SimpleTuner's source (bghira/SimpleTuner at bc8e6ab, version 4.8.0), not
// copied from it; each step names where it comes from:
// - factory.py `load_configuration` -> `json.load`, then `backend.get(...)` on each
//   element: a list of dicts, not empty;
// - factory.py `fill_variables_in_config_paths` (1194-1218, called at 1877) with
//   configuration/template_vars.py (10-28): in every string of every dataset,
//   `{model_family}`, `{output_dir}` and `{id}` (the dataset's own) are filled in,
//   `{env:NAME}` from the environment ("" when unset), any other `{...}` left as is;
// - factory.py `_prevalidate_backend_ids`: every dataset has a unique, non-empty `id`;
//   `cache_dir_vae` unique and not any text-embeds `cache_dir`; one text-embeds default;
// - factory.py (local backend): `instance_data_dir` given and existing;
//   `configure_parquet_database` + `check_column_values`: the caption and filename
//   columns exist, hold strings, no nulls, no empty strings (no fallback column set);
// - data_backend/local.py `list_files`: os.walk (recursive) over instance_data_dir,
//   absolute paths, files whose extension Pillow can open;
// - metadata/backends/parquet.py `_process_for_bucket`: the file's path with
//   instance_data_dir replaced by "" and one leading "/" dropped is looked up in the
//   filename column (extension kept with identifier_includes_extension), a miss is
//   `metadata_missing`; width and height come from the row, never from the file;
//   `_extract_captions_to_fast_list`: a caption that is empty after strip() is missing;
// - metadata/backends/base.py `meets_resolution_requirements`: minimum_image_size per
//   resolution_type (pixel: both edges; area: megapixels, above 5 an error; pixel_area:
//   an edge length squared, factory.py `_handle_resolution_conversion`).
import { openAsBlob } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, isAbsolute, join } from 'node:path';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';

/** Extensions Pillow opens (its registered OPEN extensions, the image ones). */
const PILLOW_EXTENSIONS = new Set(['.apng', '.avif', '.bmp', '.gif', '.jfif', '.jpe', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pbm', '.tga', '.ico', '.qoi']);
/** Folders local.py's walk leaves out. */
const SKIPPED_FOLDERS = new Set(['.Spotlight-V100', '.Trashes', '.fseventsd', '.TemporaryItems', '.zfs', '.ipynb_checkpoints']);

/**
 * What SimpleTuner is given, as `--model_family` and `--output_dir`.
 * @typedef {{ modelFamily?: string, outputDir?: string }} TrainerArgs
 */

/**
 * The config's datasets as SimpleTuner reads them (placeholders filled in), checked as it
 * checks them before it looks at any file: ids, the default text embeds, the caches.
 * @param {string} configPath @param {TrainerArgs} [args]
 * @returns {Promise<any[]>}
 */
export async function datasetsLikeSimpleTuner(configPath, { modelFamily = 'flux', outputDir = '/srv/simpletuner/output' } = {}) {
  const raw = JSON.parse(await readFile(configPath, 'utf8'));
  if (!Array.isArray(raw)) throw new Error(`${configPath}: the dataloader config must be a list of datasets, got ${typeof raw}`);
  if (raw.length === 0) throw new Error('Must provide at least one data backend');
  for (const backend of raw) {
    if (backend === null || typeof backend !== 'object' || Array.isArray(backend)) throw new Error(`each dataset must be a dict, got ${JSON.stringify(backend)}`);
  }
  const config = raw.map((backend) => fillPlaceholders(backend, { model_family: modelFamily, output_dir: outputDir, id: String(backend.id ?? '') }));
  const ids = config.map((backend) => backend.id);
  if (ids.some((id) => typeof id !== 'string' || id === '')) throw new Error("Each dataset needs a unique 'id' field.");
  if (new Set(ids).size !== ids.length) throw new Error(`dataset ids are not unique: ${ids.join(', ')}`);

  const textEmbeds = config.filter((backend) => backend.dataset_type === 'text_embeds');
  if (textEmbeds.filter((backend) => backend.default === true).length !== 1) throw new Error('exactly one text embed backend must be marked as default');
  for (const backend of textEmbeds) if (!['local', 'memory'].includes(backend.type)) throw new Error(`text embeds ${backend.id}: type ${backend.type}`);
  // factory.py:4128-4138, on the filled-in paths.
  /** @type {string[]} */
  const vaeCaches = [];
  for (const backend of config.filter((each) => (each.dataset_type ?? 'image') === 'image')) {
    const cache = backend.cache_dir_vae;
    if (typeof cache !== 'string' || !isAbsolute(cache)) throw new Error(`cache_dir_vae ${cache} is not an absolute path`);
    if (vaeCaches.includes(cache)) throw new Error(`VAE image embed cache directory ${cache} is the same as another VAE image embed cache directory.`);
    if (textEmbeds.some((each) => each.cache_dir === cache)) throw new Error(`VAE image embed cache directory ${cache} is the same as the text embed cache directory.`);
    vaeCaches.push(cache);
  }
  return config;
}

/**
 * @param {string} configPath @param {TrainerArgs} [args]
 * @returns {Promise<{ id: string, samples: Map<string, { caption: string, width: number, height: number }>, skipped: Record<string, string[]>, datasets: any[] }>}
 *   what the image dataset trains on, by absolute file path, the files it skips with why,
 *   and the datasets as SimpleTuner read them
 */
export async function loadLikeSimpleTuner(configPath, args) {
  const config = await datasetsLikeSimpleTuner(configPath, args);
  const images = config.filter((backend) => (backend.dataset_type ?? 'image') === 'image');
  if (images.length !== 1) throw new Error(`expected one image dataset, got ${images.length}`);
  const [image] = images;
  if (image.type !== 'local') throw new Error(`image dataset type ${image.type}`);
  if (typeof image.instance_data_dir !== 'string' || !(await stat(image.instance_data_dir)).isDirectory()) {
    throw new Error('A local backend requires instance_data_dir, an existing folder');
  }
  if (image.caption_strategy !== 'parquet' || image.metadata_backend !== 'parquet') throw new Error('captions must come from the parquet metadata backend');
  const parquet = image.parquet;
  if (!parquet?.path) throw new Error("Parquet backend must have a 'path' field");
  const { resolution, resolution_type: type, minimum_image_size: minimum } = image;
  if (type === 'pixel' || type === 'pixel_area') {
    if (!Number.isInteger(resolution)) throw new Error(`resolution ${resolution} must be an integer for ${type}`);
  } else if (type === 'area') {
    if (typeof resolution !== 'number' || resolution <= 0 || resolution > 20) throw new Error(`area resolution ${resolution} is not a megapixel count`);
    if (minimum > 5) throw new Error(`--minimum_image_size was given with a value of ${minimum} but resolution_type is area`);
  } else {
    throw new Error(`Unknown resolution type ${type}`);
  }
  if (type === 'pixel_area' && (minimum * minimum) / 1e6 > 5) throw new Error(`pixel_area minimum ${minimum} is over 5 megapixels`);

  // configure_parquet_database + check_column_values
  const table = await readParquet(parquet.path);
  const column = (name) => {
    const vector = table.getChild(name);
    if (!vector) throw new Error(`Parquet file ${parquet.path} does not contain a column named '${name}'.`);
    return vector.toArray();
  };
  const filenames = column(parquet.filename_column);
  const captions = column(parquet.caption_column);
  const widths = column(parquet.width_column ?? 'width');
  const heights = column(parquet.height_column ?? 'height');
  for (const [name, values] of [[parquet.caption_column, captions], [parquet.filename_column, filenames]]) {
    if (values.length === 0) throw new Error(`Parquet file ${parquet.path} contains only null values in the '${name}' column.`);
    for (const value of values) {
      if (value === null || value === undefined) throw new Error(`Parquet file ${parquet.path} contains null values in the '${name}' column.`);
      if (typeof value !== 'string') throw new Error(`Unsupported data type in column '${name}'. Expected strings or arrays of strings.`);
      if (value === '' && !parquet.fallback_caption_column) throw new Error(`Parquet file ${parquet.path} contains empty strings in the '${name}' column.`);
    }
  }
  /** @type {Map<string, number>} */
  const rowOf = new Map();
  for (const [row, filename] of filenames.entries()) {
    const key = parquet.identifier_includes_extension ? filename : filename.replace(/\.[^.]*$/, '');
    rowOf.set(key, row);
  }

  /** @type {Map<string, { caption: string, width: number, height: number }>} */
  const samples = new Map();
  /** @type {Record<string, string[]>} */
  const skipped = { metadata_missing: [], too_small: [], missing_caption: [] };
  for (const path of await listImageFiles(image.instance_data_dir)) {
    let key = path;
    if (!parquet.identifier_includes_extension) key = (key.split('/').pop() ?? key).replace(/\.[^.]*$/, '');
    if (key.includes(image.instance_data_dir)) {
      key = key.replaceAll(image.instance_data_dir, '');
      if (key.startsWith('/')) key = key.slice(1);
    }
    const row = rowOf.get(key);
    if (row === undefined) {
      skipped.metadata_missing.push(path);
      continue;
    }
    const width = Number(widths[row]);
    const height = Number(heights[row]);
    if (!meetsMinimum(type, minimum, width, height)) {
      skipped.too_small.push(path);
      continue;
    }
    const caption = String(captions[row]).trim();
    if (!caption) {
      skipped.missing_caption.push(path);
      continue;
    }
    samples.set(path, { caption, width, height });
  }
  return { id: image.id, samples, skipped, datasets: config };
}

/**
 * template_vars.py `resolve_value_placeholders`: strings in lists and dicts, recursively.
 * @param {unknown} value @param {Record<string, string>} variables @returns {any}
 */
function fillPlaceholders(value, variables) {
  if (typeof value === 'string') {
    return value.replace(/\{([^{}]+)\}/g, (whole, token) => {
      if (token.startsWith('env:')) return process.env[token.slice(4)] ?? '';
      return Object.hasOwn(variables, token) ? variables[token] : whole;
    });
  }
  if (Array.isArray(value)) return value.map((item) => fillPlaceholders(item, variables));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fillPlaceholders(item, variables)]));
  return value;
}

/**
 * base.py `meets_resolution_requirements` with crop off, on the size the metadata gives:
 * `pixel` needs both edges, `area` the megapixels (`minimum × 1e6 <= width × height`),
 * and a `pixel_area` minimum is an edge SimpleTuner first turns into megapixels
 * (`edge² / 1e6`, factory.py `_handle_resolution_conversion`). Unset or 0 filters nothing.
 * @param {string} type @param {number | null | undefined} minimum @param {number} width @param {number} height
 */
export function meetsMinimum(type, minimum, width, height) {
  if (!minimum) return true;
  if (type === 'pixel') return minimum <= width && minimum <= height;
  const megapixels = type === 'area' ? minimum : (minimum * minimum) / 1_000_000;
  return megapixels * 1_000_000 <= width * height;
}

/** local.py list_files: a recursive walk, absolute paths, image extensions (any case). @param {string} root */
async function listImageFiles(root) {
  /** @type {string[]} */
  const found = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_FOLDERS.has(entry.name)) found.push(...(await listImageFiles(path)));
    } else if (PILLOW_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
      found.push(path);
    }
  }
  return found;
}

/** @param {string} path */
async function readParquet(path) {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  return arrow.tableFromIPC((await file.read()).intoIPCStream());
}
